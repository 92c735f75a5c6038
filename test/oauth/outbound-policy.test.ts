import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isOutboundBlocked } from '../../src/oauth/errors.js';
import {
  createOutbound,
  isAddressAllowed,
  isLoopbackHttpAllowed,
  parseAllowList,
} from '../../src/oauth/outbound.js';

describe('the outbound address policy', () => {
  const none = parseAllowList([]);
  const refusedWithoutAllow = [
    '127.0.0.1',
    '127.0.0.2',
    '0.0.0.0',
    '10.1.2.3',
    '172.16.0.1',
    '192.168.1.1',
    '169.254.169.254',
    '100.64.0.1',
    '224.0.0.1',
    '255.255.255.255',
    '::',
    '::1',
    'fe80::1',
    'fc00::1',
    'fd12:3456::1',
    'ff02::1',
    // IPv4-mapped, -compatible and -translated forms of loopback and metadata addresses.
    '::ffff:127.0.0.2',
    '::ffff:7f00:2',
    '::ffff:169.254.169.254',
    '::127.0.0.1',
    '::7f00:1',
    '::a9fe:a9fe',
    '::ffff:0:7f00:1',
    // NAT64 and 6to4 addresses that carry a private IPv4 address.
    '64:ff9b::7f00:1',
    '64:ff9b::a9fe:a9fe',
    '64:ff9b::a00:1',
    '2002:7f00:1::1',
    '2002:a9fe:a9fe::1',
    '2002:c0a8:101::1',
    // Teredo, documentation, discard-only.
    '2001::1',
    '2001:db8::1',
    '100::1',
    'not-an-address',
  ];
  it.each(refusedWithoutAllow)('refuses %s when nothing is allowed', (address) => {
    expect(isAddressAllowed(address, none)).toBe(false);
  });

  const publicAddresses = [
    '8.8.8.8',
    '2606:4700:4700::1111',
    '::ffff:8.8.8.8',
    '64:ff9b::808:808',
    '2002:808:808::1',
  ];
  it.each(publicAddresses)('allows the public address %s', (address) => {
    expect(isAddressAllowed(address, none)).toBe(true);
  });

  it('allows exactly what the allow list names, in every form that carries it', () => {
    const allow = parseAllowList(['127.0.0.2/32', 'fd00::/8']);
    for (const a of ['127.0.0.2', '::ffff:127.0.0.2', '::127.0.0.2', '64:ff9b::7f00:2', 'fd00::5']) {
      expect(isAddressAllowed(a, allow), a).toBe(true);
    }
    for (const a of ['127.0.0.1', '::ffff:127.0.0.1', '::7f00:1', '2002:7f00:1::', 'fc00::1', '::1']) {
      expect(isAddressAllowed(a, allow), a).toBe(false);
    }
  });

  it('lets plain http go only to a non-public address the allow list names', () => {
    const policy = { allow: ['127.0.0.2/32'], timeoutMs: 1000 };
    expect(isLoopbackHttpAllowed(new URL('http://127.0.0.2/'), policy)).toBe(true);
    expect(isLoopbackHttpAllowed(new URL('http://[::127.0.0.1]/'), policy)).toBe(false);
    expect(isLoopbackHttpAllowed(new URL('http://127.0.0.1/'), policy)).toBe(false);
    expect(isLoopbackHttpAllowed(new URL('http://8.8.8.8/'), policy)).toBe(false);
  });
});

/** A real listener that counts what reached it. */
async function listen(host: string, answer?: (path: string) => { status: number; location?: string }) {
  const received: string[] = [];
  const server: Server = createServer((req, res) => {
    received.push(`${req.method} ${req.url}`);
    const a = answer?.(req.url ?? '/') ?? { status: 200 };
    res.writeHead(a.status, a.location === undefined ? {} : { location: a.location });
    res.end('ok');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    port,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('the outbound transports against real listeners, with only the server under test allowed', () => {
  /** The one server the policy allows (127.0.0.2); it redirects `/redirect` to the trap. */
  let allowed: Awaited<ReturnType<typeof listen>>;
  /** Loopback listeners nothing may reach: 127.0.0.1 and ::1 on the same port. */
  let trap: Awaited<ReturnType<typeof listen>>;
  let trap6: Awaited<ReturnType<typeof listen>>;
  const outbound = () => createOutbound({ allow: ['127.0.0.2/32'], timeoutMs: 2000 });

  beforeAll(async () => {
    trap = await listen('127.0.0.1');
    trap6 = await listen('::1');
    allowed = await listen('127.0.0.2', (path) =>
      path === '/redirect'
        ? { status: 302, location: `http://127.0.0.1:${trap.port}/after-redirect` }
        : { status: 200 },
    );
  });

  afterAll(async () => {
    await allowed?.close();
    await trap?.close();
    await trap6?.close();
  });

  const targets = () => [
    `http://127.0.0.1:${trap.port}/literal`,
    `http://2130706433:${trap.port}/decimal`,
    `http://0x7f.1:${trap.port}/hex`,
    `http://0.0.0.0:${trap.port}/unspecified`,
    `http://[::ffff:127.0.0.1]:${trap.port}/mapped`,
    `http://[::127.0.0.1]:${trap.port}/compatible`,
    `http://[::1]:${trap6.port}/v6-loopback`,
    `http://localhost:${trap.port}/dns-name`,
    `http://[64:ff9b::7f00:1]:${trap.port}/nat64`,
    `http://[2002:7f00:1::1]:${trap.port}/6to4`,
    'http://169.254.169.254/latest/meta-data/',
    'http://10.0.0.1/',
    'http://[fc00::1]/',
  ];

  it('fetch: refuses every non-allowed target by policy, and nothing arrives', async () => {
    const { fetch } = outbound();
    for (const url of targets()) {
      const error = await fetch(url).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isOutboundBlocked(error), `${url}: ${String(error)}`).toBe(true);
    }
    expect(trap.received).toEqual([]);
    expect(trap6.received).toEqual([]);
  });

  it('request (the proxy transport): refuses every non-allowed target by policy, and nothing arrives', async () => {
    const { request } = outbound();
    for (const url of targets()) {
      const u = new URL(url);
      const error = await request(
        { origin: new URL(u.origin), path: u.pathname },
        { method: 'GET', headers: {} },
      ).then(
        async (r) => {
          await r.body.dump();
          return undefined;
        },
        (e: unknown) => e,
      );
      expect(isOutboundBlocked(error), `${url}: ${String(error)}`).toBe(true);
    }
    expect(trap.received).toEqual([]);
    expect(trap6.received).toEqual([]);
  });

  it('reaches the allowed server, and never follows its redirect to a private address', async () => {
    const { fetch, request } = outbound();
    const viaFetch = await fetch(`http://127.0.0.2:${allowed.port}/redirect`);
    expect(viaFetch.status).toBe(302);
    await viaFetch.arrayBuffer();
    const viaRequest = await request(
      { origin: new URL(`http://127.0.0.2:${allowed.port}`), path: '/redirect' },
      { method: 'GET', headers: {} },
    );
    expect(viaRequest.statusCode).toBe(302);
    await viaRequest.body.dump();
    expect(allowed.received).toEqual(['GET /redirect', 'GET /redirect']);
    expect(trap.received).toEqual([]);
  });
});
