import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, redactUrl } from '../../src/observability/logger.js';
import { createTestDatabase, type TestDatabase } from '../support/databases.js';
import { startTestService, type TestService } from '../support/service.js';

/** A logger writing into an array of parsed JSON lines. */
function capture(): {
  lines: Array<Record<string, unknown>>;
  raw: string[];
  logger: ReturnType<typeof createLogger>;
} {
  const raw: string[] = [];
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      for (const line of String(chunk)
        .split('\n')
        .filter((l) => l.length > 0)) {
        raw.push(line);
        lines.push(JSON.parse(line) as Record<string, unknown>);
      }
      cb();
    },
  });
  return { lines, raw, logger: createLogger({ level: 'debug', destination }) };
}

const secretFields = [
  'authorization',
  'cookie',
  'set-cookie',
  'access_token',
  'refresh_token',
  'id_token',
  'client_secret',
  'code',
] as const;

/** Wraps `leaf` under `depth - 1` levels of objects: depth 1 is the log object itself. */
function nest(depth: number, leaf: Record<string, unknown>): Record<string, unknown> {
  let value = leaf;
  for (let i = depth - 1; i >= 1; i--) value = { [`level${i}`]: value };
  return value;
}

function at(line: Record<string, unknown>, depth: number): Record<string, unknown> {
  let value = line;
  for (let i = 1; i < depth; i++) value = value[`level${i}`] as Record<string, unknown>;
  return value;
}

describe('createLogger redaction', () => {
  it.each([1, 2, 3, 4])('redacts every secret field at depth %i', (depth) => {
    const { lines, raw, logger } = capture();
    const leaf: Record<string, unknown> = { harmless: 'keep-me' };
    for (const field of secretFields) leaf[field] = `SECRET-${field}-${depth}`;
    logger.info(nest(depth, leaf), 'message');
    expect(lines).toHaveLength(1);
    const logged = at(lines[0]!, depth);
    for (const field of secretFields) expect(logged[field], field).toBe('[redacted]');
    expect(logged.harmless).toBe('keep-me');
    expect(raw[0]).not.toContain('SECRET-');
  });

  it('redacts the camelCase and other secret names too', () => {
    const { raw, lines, logger } = capture();
    const names = [
      'accessToken',
      'refreshToken',
      'idToken',
      'clientSecret',
      'code_verifier',
      'secret',
      'token',
    ];
    logger.info({ provider: Object.fromEntries(names.map((n) => [n, `SECRET-${n}`])) }, 'x');
    expect(raw[0]).not.toContain('SECRET-');
    const provider = lines[0]!.provider as Record<string, unknown>;
    for (const n of names) expect(provider[n], n).toBe('[redacted]');
  });

  it('redacts credential headers of a logged request or response', () => {
    const { raw, logger } = capture();
    logger.warn(
      {
        upstream: {
          request: { headers: { authorization: 'Bearer SECRET-AT', cookie: 'sid=SECRET-SID' } },
        },
        response: { headers: { 'set-cookie': 'sid=SECRET-NEW' } },
      },
      'upstream call',
    );
    expect(raw[0]).not.toMatch(/SECRET-/);
    expect(raw[0]).toContain('[redacted]');
  });

  it('serializes requests without query values', () => {
    const { lines, raw, logger } = capture();
    logger.info({
      req: { id: 'r1', method: 'GET', url: '/oauth/callback?code=SECRET-CODE&state=SECRET-STATE' },
    });
    expect(raw[0]).not.toContain('SECRET-');
    expect(lines[0]!.req).toEqual({
      id: 'r1',
      method: 'GET',
      url: '/oauth/callback?code=[redacted]&state=[redacted]',
    });
  });
});

describe('redactUrl', () => {
  it('hides every query value and keeps the names', () => {
    expect(redactUrl('/oauth/callback?code=abc&state=def')).toBe(
      '/oauth/callback?code=[redacted]&state=[redacted]',
    );
    expect(redactUrl('/session?token=eyJ.x.y&return_to=%2Fx')).toBe(
      '/session?token=[redacted]&return_to=[redacted]',
    );
  });

  it('lists a repeated name once, and leaves a URL without a query alone', () => {
    expect(redactUrl('/x?a=1&a=2&b')).toBe('/x?a=[redacted]&b=[redacted]');
    expect(redactUrl('/healthz')).toBe('/healthz');
    expect(redactUrl('/x?')).toBe('/x?');
  });
});

describe('the running service logs no secret it is sent', () => {
  let database: TestDatabase;
  let svc: TestService;

  beforeAll(async () => {
    database = await createTestDatabase('sqlite');
    svc = await startTestService({ database });
  });
  afterAll(async () => {
    await svc?.close();
    await database?.drop();
  });

  it('names the problem code of a refused request in its log line', async () => {
    const res = await fetch(`${svc.url}/api/v1/connections`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await svc.token('alice')}`, 'content-type': 'application/json' },
      body: JSON.stringify({ integration: 'no-such-integration' }),
    });
    expect(res.status).toBe(404);
    const reqId = svc.logs
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find(
        (l) => l.msg === 'incoming request' && (l.req as { url?: string }).url === '/api/v1/connections',
      )?.reqId;
    expect(reqId).toBeDefined();
    const refused = svc.logs
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.reqId === reqId && l.msg === 'request refused');
    // An operator needs to know why: the stable problem code is not a secret.
    expect(refused).toMatchObject({ status: 404, problem: 'integration_not_found' });
  });

  it('keeps query tokens, cookies and bearer tokens out of every log line', async () => {
    const querySecret = 'SECRETQUERYVALUE0123456789';
    const sessionJwt = await svc.token('alice');
    const bearerJwt = await svc.token('bob');
    const forgedBearer = `${bearerJwt.slice(0, -6)}AAAAAA`;

    // A JWT exchanged for a session cookie at /session.
    const session = await fetch(`${svc.url}/session?token=${sessionJwt}&return_to=/`, { redirect: 'manual' });
    expect(session.status).toBe(302);
    const cookie = session.headers.getSetCookie()[0]!.split(';')[0]!;
    const cookieValue = cookie.slice(cookie.indexOf('=') + 1);
    expect(cookieValue.length).toBeGreaterThan(20);

    // A secret in the query, with a cookie and a bearer token, on a route that works…
    const ok = await fetch(`${svc.url}/api/v1/me?token=${querySecret}`, {
      headers: { cookie, authorization: `Bearer ${bearerJwt}` },
    });
    expect(ok.status).toBe(200);
    // …on one that fails authentication…
    const refused = await fetch(`${svc.url}/api/v1/me?code=${querySecret}`, {
      headers: { cookie, authorization: `Bearer ${forgedBearer}` },
    });
    expect(refused.status).toBe(401);
    // …on an unknown route, and on a /session exchange that fails.
    await fetch(`${svc.url}/nowhere?access_token=${querySecret}`, { headers: { cookie } });
    const badSession = await fetch(`${svc.url}/session?token=${forgedBearer}&return_to=/`);
    expect(badSession.status).toBe(401);

    const logs = svc.logs.join('\n');
    // The requests were logged (so this scan is looking at them)…
    expect(logs).toContain('/api/v1/me?token=[redacted]');
    expect(logs).toContain('/session?token=[redacted]&return_to=[redacted]');
    expect(logs).toContain('/nowhere?access_token=[redacted]');
    // …and no secret value appears anywhere.
    for (const secret of [querySecret, sessionJwt, bearerJwt, forgedBearer, cookieValue]) {
      expect(logs).not.toContain(secret);
    }
    // Not even a JWT's signature or payload on its own.
    for (const jwt of [sessionJwt, bearerJwt]) {
      for (const part of jwt.split('.').slice(1)) expect(logs).not.toContain(part);
    }
  });
});
