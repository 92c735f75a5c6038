import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, databaseKinds, type TestDatabase } from '../support/databases.js';
import { parseRawResponse, rawExchange } from '../support/raw-http.js';
import { startTestService, type TestService } from '../support/service.js';

const scrapeToken = 'scrape-token-for-bad-input-0123456789';

/** Checks a problem+json answer (also one written outside Fastify) and returns its body. */
function problemOf(status: number, headers: Record<string, string>, body: string) {
  expect(headers['content-type'], body).toMatch(/^application\/problem\+json/);
  expect(headers['x-content-type-options']).toBe('nosniff');
  const parsed = JSON.parse(body) as Record<string, unknown>;
  expect(parsed).toMatchObject({ status, type: expect.stringMatching(/^https:\/\/nunq\.dev\/problems\//) });
  expect(body).not.toMatch(/FST_|HPE_|Error:|statusCode/);
  return parsed;
}

describe.each(databaseKinds)('bad input answered clearly on %s', (kind) => {
  let database: TestDatabase;
  let svc: TestService;
  let port: number;
  let bearer: string;
  let admin: string;

  beforeAll(async () => {
    database = await createTestDatabase(kind);
    svc = await startTestService({
      database,
      metrics: { token: scrapeToken },
      serviceOptions: { background: false },
    });
    port = Number(new URL(svc.url).port);
    bearer = `Bearer ${await svc.token('alice')}`;
    admin = `Bearer ${await svc.token('root', 'admin')}`;
  });
  afterAll(async () => {
    await svc?.close();
    await database?.drop();
  });

  describe('validation messages say what is wrong (bad input 3)', () => {
    it.each([
      { body: { integration: 123 }, detail: 'body.integration: must be a string, not a number' },
      { body: { integration: null }, detail: 'body.integration: must be a string, not null' },
      { body: { integration: ['a'] }, detail: 'body.integration: must be a string, not a list' },
      {
        body: { integration: 'Bad Id!' },
        detail: 'body.integration: must be an integration id (1-64 lowercase letters, digits, _ and -)',
      },
      { body: {}, detail: 'body.integration: required' },
      { body: { integration: 'x', returnTo: 5 }, detail: 'body.returnTo: must be a string, not a number' },
      { body: [], detail: 'body: must be an object, not a list' },
      { body: 'text', detail: 'body: must be an object, not a string' },
      {
        body: { integration: 'x', '<img src=x>': 1 },
        detail: 'body: unknown field(s): (a field name not shown)',
      },
      { body: { integration: 'x', colour: 1 }, detail: 'body: unknown field(s): colour' },
    ])('POST /api/v1/connections $body → $detail', async ({ body, detail }) => {
      const res = await fetch(`${svc.url}/api/v1/connections`, {
        method: 'POST',
        headers: { authorization: bearer, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      const problem = problemOf(400, Object.fromEntries(res.headers), await res.text());
      expect(problem.detail).toBe(detail);
    });

    it.each([
      { query: 'limit=abc', detail: 'query.limit: must be a number' },
      { query: 'limit=1&limit=2', detail: 'query.limit: given more than once' },
      { query: 'limit=0', detail: 'query.limit: must be at least 1' },
      { query: 'limit=1.5', detail: 'query.limit: must be an integer' },
      { query: 'before=1&before=2&limit=1', detail: 'query.before: given more than once' },
    ])('GET /api/v1/admin/audit?$query → $detail', async ({ query, detail }) => {
      const res = await fetch(`${svc.url}/api/v1/admin/audit?${query}`, {
        headers: { authorization: admin },
      });
      const problem = problemOf(400, Object.fromEntries(res.headers), await res.text());
      expect(problem.detail).toBe(detail);
    });
  });

  describe('errors outside our handlers are problem+json (bad input 4)', () => {
    it.each([
      {
        name: 'headers over the size limit',
        raw: `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
        status: 431,
        code: 'header_fields_too_large',
      },
      { name: 'a garbage request line', raw: 'GARBAGE\r\n\r\n', status: 501, code: 'not_implemented' },
      {
        name: 'an unknown method',
        raw: 'FROB /healthz HTTP/1.1\r\nHost: x\r\n\r\n',
        status: 501,
        code: 'not_implemented',
      },
      {
        name: 'a Content-Length that is no number',
        raw: 'POST /api/v1/connections HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n',
        status: 400,
        code: 'bad_request',
      },
      {
        name: 'two different Content-Lengths',
        raw: 'POST /api/v1/connections HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}',
        status: 400,
        code: 'bad_request',
      },
      {
        name: 'a broken chunked body',
        raw: 'POST /api/v1/connections HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n',
        status: 400,
        code: 'bad_request',
      },
      {
        name: 'a bad HTTP version',
        raw: 'GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n',
        status: 400,
        code: 'bad_request',
      },
      {
        name: 'a header without a colon',
        raw: 'GET /healthz HTTP/1.1\r\nHost: x\r\nBroken header\r\n\r\n',
        status: 400,
        code: 'bad_request',
      },
      {
        name: 'HTTP/1.1 without Host',
        raw: 'GET /healthz HTTP/1.1\r\n\r\n',
        status: 400,
        code: 'bad_request',
      },
      {
        name: 'an Expect other than 100-continue',
        raw: 'GET /healthz HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\nConnection: close\r\n\r\n',
        status: 417,
        code: 'expectation_failed',
      },
      {
        name: 'CONNECT',
        raw: 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n',
        status: 405,
        code: 'method_not_allowed',
      },
    ])('$name → $status $code', async ({ raw, status, code }) => {
      const r = await rawExchange(port, [raw], { waitMs: 3000 });
      const parsed = parseRawResponse(r.response);
      expect(parsed.status, r.response.slice(0, 200)).toBe(status);
      const problem = problemOf(status, parsed.headers, parsed.body);
      expect(problem.code).toBe(code);
      expect(typeof problem.detail).toBe('string');
      if (status === 405) expect(parsed.headers.allow).toBe('');
    });

    it.each([
      { method: 'TRACE', path: '/healthz', allow: 'GET, HEAD' },
      { method: 'OPTIONS', path: '/healthz', allow: 'GET, HEAD' },
      { method: 'DELETE', path: '/healthz', allow: 'GET, HEAD' },
      { method: 'PROPFIND', path: '/healthz', allow: 'GET, HEAD' },
      { method: 'PUT', path: '/api/v1/connections', allow: 'GET, HEAD, POST' },
      {
        method: 'PATCH',
        path: '/api/v1/connections/3f0c6a1e-0000-4000-8000-000000000000',
        allow: 'DELETE, GET, HEAD',
      },
      {
        method: 'GET',
        path: '/api/v1/notifications/3f0c6a1e-0000-4000-8000-000000000000/read',
        allow: 'POST',
      },
    ])('$method $path → 405 with Allow: $allow', async ({ method, path, allow }) => {
      const r = await rawExchange(port, [
        `${method} ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
      ]);
      const parsed = parseRawResponse(r.response);
      expect(parsed.status).toBe(405);
      expect(parsed.headers.allow).toBe(allow);
      expect(problemOf(405, parsed.headers, parsed.body).code).toBe('method_not_allowed');
    });

    it('still answers 404 for a path no route has', async () => {
      const res = await fetch(`${svc.url}/no/such/path`, { method: 'DELETE' });
      expect(res.status).toBe(404);
      expect(res.headers.get('allow')).toBeNull();
    });

    it.each([
      { type: 'text/plain', body: '{"integration":"x"}' },
      { type: 'application/x-www-form-urlencoded', body: 'integration=x' },
      { type: 'application/xml', body: '<integration>x</integration>' },
      { type: 'multipart/form-data; boundary=x', body: '--x--' },
    ])('a $type body on the JSON API → 415', async ({ type, body }) => {
      const res = await fetch(`${svc.url}/api/v1/connections`, {
        method: 'POST',
        headers: { authorization: bearer, 'content-type': type },
        body,
      });
      const problem = problemOf(415, Object.fromEntries(res.headers), await res.text());
      expect(problem).toMatchObject({ code: 'unsupported_media_type', detail: 'Send application/json.' });
    });

    it('413 names the limit', async () => {
      const res = await fetch(`${svc.url}/api/v1/connections`, {
        method: 'POST',
        headers: { authorization: bearer, 'content-type': 'application/json' },
        body: JSON.stringify({ integration: 'x', pad: 'p'.repeat(1024 * 1024) }),
      });
      const problem = problemOf(413, Object.fromEntries(res.headers), await res.text());
      expect(problem.detail).toBe('The request body is larger than the limit of 1048576 bytes.');
    });
  });

  describe('a wrong metrics credential is named (bad input 6)', () => {
    it.each([
      { authorization: `Bearer ${scrapeToken}x`, detail: /scrape token is wrong/ },
      { authorization: 'Bearer not-even-a-jwt', detail: /scrape token is wrong/ },
      { authorization: undefined, detail: /^Sign in first/ },
    ])('$authorization → 401 $detail', async ({ authorization, detail }) => {
      const res = await fetch(`${svc.url}/metrics`, authorization ? { headers: { authorization } } : {});
      const problem = problemOf(401, Object.fromEntries(res.headers), await res.text());
      expect(problem.detail).toMatch(detail);
      expect(JSON.stringify(problem)).not.toContain(scrapeToken);
    });
  });
});
