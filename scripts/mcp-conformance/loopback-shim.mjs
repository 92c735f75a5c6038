// `node --import ./loopback-shim.mjs …`: a TCP server that listens without naming a host binds
// 127.0.0.1 instead of every interface.
//
// The conformance suite's mock MCP and authorization servers call `app.listen(0)` (all
// interfaces, reachable from the network) and read `server.address().port` right after, so the
// bind must stay synchronous: the host cannot be added to `listen()` (a named host is looked up
// asynchronously first). Node binds a host-less listen through `Server.prototype._listen2`
// with no address; this fills in 127.0.0.1 there. Hand-rolled: the suite has no option for it.
import net from 'node:net';

const listen2 = net.Server.prototype._listen2;
if (typeof listen2 !== 'function') {
  throw new Error('loopback-shim: this Node has no net.Server.prototype._listen2 to wrap');
}
net.Server.prototype._listen2 = function loopbackListen2(address, port, addressType, backlog, fd, flags) {
  if (!address && typeof fd !== 'number') return listen2.call(this, '127.0.0.1', port, 4, backlog, fd, flags);
  return listen2.call(this, address, port, addressType, backlog, fd, flags);
};
