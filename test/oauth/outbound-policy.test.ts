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

  it('smallFetch: refuses every non-allowed target by policy, and nothing arrives', async () => {
    const { smallFetch } = outbound();
    for (const url of targets()) {
      const error = await smallFetch(url, { method: 'POST', body: 'x=1' }).then(
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

describe('smallFetch (token, revocation and userinfo calls): the answer read whole, within its limits', () => {
  type Handler = (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void;
  let server: Server;
  let base: string;
  const routes = new Map<string, Handler>();
  const { smallFetch } = createOutbound({ allow: ['127.0.0.1/32'], timeoutMs: 300 });

  beforeAll(async () => {
    server = createServer((req, res) => {
      const handle = routes.get(req.url ?? '');
      if (handle === undefined) res.writeHead(404).end();
      else handle(req, res);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    routes.set('/token', (req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => {
        body += c.toString();
      });
      req.on('end', () => {
        res.setHeader('set-cookie', ['a=1', 'b=2']);
        res.writeHead(200, {
          'content-type': 'application/json',
          'x-seen-type': req.headers['content-type'] ?? '',
        });
        res.end(JSON.stringify({ method: req.method, body, auth: req.headers.authorization }));
      });
    });
    routes.set('/empty', (_req, res) => res.writeHead(204).end());
    routes.set('/redirect', (_req, res) => res.writeHead(302, { location: `${base}/token` }).end());
    routes.set('/huge', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(Buffer.alloc(1024 * 1024 + 1, 'a'));
    });
    routes.set('/silent', () => {
      // Never answers: the head must arrive within timeoutMs.
    });
    /**
     * The head at once, then the body in two halves 1.5 s apart: longer than timeoutMs even at the
     * coarse resolution of undici's body timer (about 1 s).
     */
    routes.set('/slow-body', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"access_token":');
      setTimeout(() => res.end('"late"}'), 1_500);
    });
    routes.set('/endless', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const tick = setInterval(() => res.write(' '), 100);
      res.on('close', () => clearInterval(tick));
    });
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('sends a form body with its headers and gives status, headers (each set-cookie) and body back', async () => {
    const response = await smallFetch(`${base}/token`, {
      method: 'POST',
      headers: {
        authorization: 'Basic Y2xpZW50OnNlY3JldA==',
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: 'r-1' }),
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('x-seen-type')).toBe('application/x-www-form-urlencoded');
    expect(response.headers.getSetCookie()).toEqual(['a=1', 'b=2']);
    expect(await response.json()).toEqual({
      method: 'POST',
      body: 'grant_type=refresh_token&refresh_token=r-1',
      auth: 'Basic Y2xpZW50OnNlY3JldA==',
    });
  });

  it('answers 204 with no body, and never follows a redirect', async () => {
    const empty = await smallFetch(`${base}/empty`);
    expect(empty.status).toBe(204);
    expect(empty.body).toBeNull();
    const redirect = await smallFetch(`${base}/redirect`);
    expect(redirect.status).toBe(302);
    expect(redirect.headers.get('location')).toBe(`${base}/token`);
  });

  it('refuses an answer larger than 1 MiB', async () => {
    await expect(smallFetch(`${base}/huge`)).rejects.toThrow(/larger than 1048576 bytes/);
  });

  it('gives up when the head does not come within timeoutMs', async () => {
    const started = Date.now();
    await expect(smallFetch(`${base}/silent`)).rejects.toThrow(/timed out|aborted/i);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('without bodyTimeoutMs a body that pauses longer than timeoutMs fails; with it, it is waited out', async () => {
    await expect(smallFetch(`${base}/slow-body`)).rejects.toThrow();
    const waited = await smallFetch(`${base}/slow-body`, { bodyTimeoutMs: 3_000 });
    expect(await waited.json()).toEqual({ access_token: 'late' });
  });

  it('with bodyTimeoutMs, a body that never ends is abandoned at timeoutMs + bodyTimeoutMs', async () => {
    const started = Date.now();
    await expect(smallFetch(`${base}/endless`, { bodyTimeoutMs: 400 })).rejects.toThrow(/timed out|aborted/i);
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(650);
    expect(took).toBeLessThan(3_000);
  });

  it("stops when the caller's own signal aborts", async () => {
    const caller = new AbortController();
    const pending = smallFetch(`${base}/endless`, { bodyTimeoutMs: 10_000, signal: caller.signal });
    setTimeout(() => caller.abort(new Error('caller gave up')), 100);
    await expect(pending).rejects.toThrow(/caller gave up|aborted/);
  });
});
