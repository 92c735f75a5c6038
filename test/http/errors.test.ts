import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, databaseKinds, type TestDatabase } from '../support/databases.js';
import { startTestService, type TestService } from '../support/service.js';

const internalMessage = 'db password hunter2 leaked in an internal message';

/**
 * Asserts an RFC 9457 problem with `type`, `title`, `status` and `code`, and that nothing internal
 * (a stack trace, an error class name, a parser's message) made it into the body.
 */
async function expectProblem(res: Response, status: number, code: string): Promise<Record<string, unknown>> {
  const text = await res.text();
  expect({ status: res.status, text }).toMatchObject({ status });
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const body = JSON.parse(text) as Record<string, unknown>;
  expect(body).toMatchObject({
    type: expect.stringMatching(/^https:\/\/nunq\.dev\/problems\/[a-z-]+$/),
    title: expect.any(String),
    status,
    code,
  });
  expect(typeof body.detail === 'string' || body.detail === undefined).toBe(true);
  expect(text).not.toMatch(/\bat \S+ \(|\bat \S+:\d+:\d+|\\n\s+at /);
  expect(text).not.toMatch(/Error:|FST_|SyntaxError|TypeError|Unexpected token|position \d+/);
  expect(text).not.toContain('node_modules');
  expect(text).not.toContain(internalMessage);
  expect(body).not.toHaveProperty('stack');
  return body;
}

describe.each(databaseKinds)('HTTP errors, health and headers on %s', (kind) => {
  let database: TestDatabase;
  let svc: TestService;
  let bearer: string;

  beforeAll(async () => {
    database = await createTestDatabase(kind);
    svc = await startTestService({
      database,
      serviceOptions: {
        routes: [
          (app) => {
            app.get('/test/boom', async () => {
              throw new Error(internalMessage);
            });
            app.get('/test/boom-with-status', async () => {
              throw Object.assign(new Error(internalMessage), { statusCode: 502 });
            });
          },
        ],
      },
    });
    bearer = `Bearer ${await svc.token('alice')}`;
  });
  afterAll(async () => {
    await svc?.close();
    await database?.drop();
  });

  const postRaw = (body: string, contentType: string) =>
    fetch(`${svc.url}/api/v1/connections`, {
      method: 'POST',
      headers: { authorization: bearer, 'content-type': contentType },
      body,
    });

  it('answers an unknown route with 404 problem+json, without echoing the query', async () => {
    const body = await expectProblem(await fetch(`${svc.url}/no/such/route?secret=s3cr3t`), 404, 'not_found');
    expect(JSON.stringify(body)).not.toContain('s3cr3t');
    await expectProblem(await fetch(`${svc.url}/api/v1/nothing`, { method: 'PUT' }), 404, 'not_found');
    // A known path with a method it does not answer is a 405 naming the allowed ones.
    const wrongMethod = await fetch(`${svc.url}/api/v1/me`, { method: 'POST' });
    expect(wrongMethod.headers.get('allow')).toBe('GET, HEAD');
    await expectProblem(wrongMethod, 405, 'method_not_allowed');
  });

  it('answers invalid JSON with 400', async () => {
    const body = await expectProblem(
      await postRaw('{"integration": ', 'application/json'),
      400,
      'bad_request',
    );
    expect(body.instance).toBe('/api/v1/connections');
    await expectProblem(await postRaw('{"integration": "x"', 'application/json'), 400, 'bad_request');
    await expectProblem(
      await postRaw('not json at all', 'application/json; charset=utf-8'),
      400,
      'bad_request',
    );
  });

  it('answers an empty JSON body with 400', async () => {
    await expectProblem(await postRaw('', 'application/json'), 400, 'bad_request');
  });

  it('answers a body that fails validation with 400 naming the field, not the value', async () => {
    const body = await expectProblem(
      await postRaw(JSON.stringify({ integration: 'Bad Id!', extra: 'sneaky-value' }), 'application/json'),
      400,
      'validation_failed',
    );
    expect(body.errors).toEqual(
      expect.arrayContaining([expect.objectContaining({ path: 'body.integration' })]),
    );
    expect(JSON.stringify(body)).not.toContain('sneaky-value');
    expect(JSON.stringify(body)).not.toContain('Bad Id!');
  });

  it('answers an unsupported content type with 415', async () => {
    await expectProblem(
      await postRaw('<integration>x</integration>', 'application/xml'),
      415,
      'unsupported_media_type',
    );
    await expectProblem(await postRaw('a,b', 'text/csv'), 415, 'unsupported_media_type');
  });

  it('answers a body over 1 MiB with 413', async () => {
    const big = JSON.stringify({ integration: 'x', padding: 'p'.repeat(2 * 1024 * 1024) });
    const tooLarge = await expectProblem(await postRaw(big, 'application/json'), 413, 'payload_too_large');
    expect(tooLarge.detail).toBe('The request body is larger than the limit of 1048576 bytes.');
    // Streamed without a content-length, too.
    const chunk = new TextEncoder().encode('p'.repeat(64 * 1024));
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent === 0) controller.enqueue(new TextEncoder().encode('{"padding":"'));
        if (sent >= 40) {
          controller.enqueue(new TextEncoder().encode('"}'));
          controller.close();
          return;
        }
        controller.enqueue(chunk);
        sent += 1;
      },
    });
    const streamed = await fetch(`${svc.url}/api/v1/connections`, {
      method: 'POST',
      headers: { authorization: bearer, 'content-type': 'application/json' },
      body: stream,
      duplex: 'half',
    } as RequestInit);
    await expectProblem(streamed, 413, 'payload_too_large');
  });

  it('answers 401 for a protected route as problem+json', async () => {
    await expectProblem(await fetch(`${svc.url}/api/v1/integrations`), 401, 'unauthenticated');
    await expectProblem(
      await fetch(`${svc.url}/api/v1/connections`, { headers: { authorization: 'Bearer x.y.z' } }),
      401,
      'unauthenticated',
    );
  });

  it('hides an unexpected error behind a 500 without its message or stack, and logs it', async () => {
    const body = await expectProblem(await fetch(`${svc.url}/test/boom`), 500, 'internal_error');
    expect(body.detail).toBe('Something went wrong on our side.');
    await expectProblem(await fetch(`${svc.url}/test/boom-with-status`), 500, 'internal_error');
    // The operator still learns what happened, from the log.
    expect(svc.logs.some((l) => l.includes(internalMessage) && l.includes('"level":50'))).toBe(true);
  });

  it('answers /healthz with 200 and the database kind', async () => {
    const res = await fetch(`${svc.url}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok', database: kind });
  });

  it('exposes Prometheus metrics with the request histogram, to administrators only', async () => {
    const admin = { headers: { authorization: `Bearer ${await svc.token('root', 'admin')}` } };
    const metrics = () => fetch(`${svc.url}/metrics`, admin);
    await fetch(`${svc.url}/healthz`);
    await expect
      .poll(async () => (await metrics()).text())
      .toMatch(/nunq_http_request_duration_seconds_count\{method="GET",route="\/healthz",status="200"\} \d+/);
    const res = await metrics();
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await res.text();
    expect(text).toContain('# TYPE nunq_http_request_duration_seconds histogram');
    // Unmatched routes share one label, so a scanner cannot blow up the label set.
    await fetch(`${svc.url}/random/${Date.now()}`);
    await expect.poll(async () => (await metrics()).text()).toMatch(/route="unmatched",status="404"/);
    expect(await (await metrics()).text()).not.toMatch(/route="\/random/);

    // Without a scrape token configured: anonymous 401, a user 403, a made-up bearer 401.
    await expectProblem(await fetch(`${svc.url}/metrics`), 401, 'unauthenticated');
    await expectProblem(
      await fetch(`${svc.url}/metrics`, { headers: { authorization: bearer } }),
      403,
      'forbidden',
    );
    await expectProblem(
      await fetch(`${svc.url}/metrics`, {
        headers: { authorization: 'Bearer not-a-scrape-token-0123456789' },
      }),
      401,
      'unauthenticated',
    );
  });

  it('sends the security headers on pages, API answers and errors', async () => {
    const responses = [
      await fetch(`${svc.url}/healthz`),
      await fetch(`${svc.url}/api/v1/me`, { headers: { authorization: bearer } }),
      await fetch(`${svc.url}/no/such/route`),
      await fetch(`${svc.url}/api/v1/me`, { headers: { authorization: 'Bearer nope' } }),
      await fetch(`${svc.url}/`),
    ];
    for (const res of responses) {
      const where = `${res.url} ${res.status}`;
      expect(res.headers.get('x-content-type-options'), where).toBe('nosniff');
      expect(res.headers.get('cache-control'), where).toBe('no-store');
      const csp = res.headers.get('content-security-policy') ?? '';
      expect(csp, where).toContain("default-src 'none'");
      expect(csp, where).toContain("frame-ancestors 'none'");
      expect(csp, where).not.toMatch(/'unsafe-inline'|'unsafe-eval'/);
      expect(res.headers.get('x-frame-options'), where).toBe('DENY');
      expect(res.headers.get('referrer-policy'), where).toBe('same-origin');
      expect(res.headers.get('x-powered-by'), where).toBeNull();
    }
  });
});
