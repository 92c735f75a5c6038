import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/databases.js';
import { startTestService, type TestService } from '../support/service.js';

const scrapeToken = 'scrape-token-0123456789abcdef';

/** `GET /metrics` with `metrics.token` configured: the token or an administrator, nobody else. */
describe('the metrics scrape token', () => {
  let database: TestDatabase;
  let svc: TestService;

  beforeAll(async () => {
    database = await createTestDatabase('sqlite');
    svc = await startTestService({ database, metrics: { token: scrapeToken } });
  });
  afterAll(async () => {
    await svc?.close();
    await database?.drop();
  });

  const status = async (authorization?: string) =>
    (await fetch(`${svc.url}/metrics`, authorization ? { headers: { authorization } } : {})).status;

  it('answers the token (scheme case-insensitive) and administrators', async () => {
    expect(await status(`Bearer ${scrapeToken}`)).toBe(200);
    expect(await status(`bearer ${scrapeToken}`)).toBe(200);
    expect(await status(`Bearer ${await svc.token('root', 'admin')}`)).toBe(200);
  });

  it('refuses anyone else, a near miss of the token included', async () => {
    expect(await status()).toBe(401);
    expect(await status(`Bearer ${scrapeToken}x`)).toBe(401);
    expect(await status(`Bearer ${scrapeToken.slice(0, -1)}`)).toBe(401);
    expect(await status(`Basic ${Buffer.from(`prom:${scrapeToken}`).toString('base64')}`)).toBe(401);
    expect(await status(`Bearer ${await svc.token('alice')}`)).toBe(403);
  });

  it('takes the token on /metrics only: elsewhere it is an invalid bearer', async () => {
    const r = await fetch(`${svc.url}/api/v1/connections`, {
      headers: { authorization: `Bearer ${scrapeToken}` },
    });
    expect(r.status).toBe(401);
  });

  it('never writes the token into a log line', () => {
    expect(svc.logs.length).toBeGreaterThan(0);
    for (const line of svc.logs) expect(line).not.toContain(scrapeToken);
  });

  it('refuses a short token in the config, naming the field', async () => {
    const { validateConfig } = await import('../../src/config/index.js');
    expect(() => validateConfig({ ...svc.config, metrics: { token: 'short' } })).toThrow(/metrics\.token/);
  });
});
