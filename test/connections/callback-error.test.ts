import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, databaseKinds, type TestDatabase } from '../support/databases.js';
import { startTestService, type TestService } from '../support/service.js';

const longJunk = `<script>${'A'.repeat(8000)}</script>`;

/**
 * Bad input 2: the callback's `error` is recorded only when it is an RFC 6749 error code (no
 * spaces, at most 64 characters); anything else becomes `invalid_error_code`.
 */
describe.each(databaseKinds)('the callback error code on %s', (kind) => {
  let database: TestDatabase;
  let svc: TestService;

  beforeAll(async () => {
    database = await createTestDatabase(kind);
    svc = await startTestService({
      database,
      serviceOptions: { background: false },
      providers: [
        {
          id: 'legacy',
          type: 'oauth2',
          // Never contacted: the callback carries an error, so no code is exchanged.
          authorizationEndpoint: 'http://127.0.0.1:9/authorize',
          tokenEndpoint: 'http://127.0.0.1:9/token',
          clientId: 'nunq',
          clientSecret: 'legacy-client-secret',
        },
      ],
      integrations: [{ id: 'legacy-api', name: 'Legacy', provider: 'legacy', scopes: ['read'] }],
    });
  });
  afterAll(async () => {
    await svc?.close();
    await database?.drop();
  });

  it.each([
    { error: 'access_denied', recorded: 'access_denied' },
    { error: 'consent_required', recorded: 'consent_required' },
    { error: 'x'.repeat(64), recorded: 'x'.repeat(64) },
    { error: 'x'.repeat(65), recorded: 'invalid_error_code' },
    { error: longJunk, recorded: 'invalid_error_code' },
    { error: 'denied\r\nSet-Cookie: a=b', recorded: 'invalid_error_code' },
    { error: 'nul\u0000byte', recorded: 'invalid_error_code' },
    { error: '<img src=x onerror=alert(1)>', recorded: 'invalid_error_code' },
    { error: '<b>"quoted"</b>', recorded: 'invalid_error_code' },
    { error: 'back\\slash', recorded: 'invalid_error_code' },
    { error: 'ünïcode', recorded: 'invalid_error_code' },
    { error: 'tab\there', recorded: 'invalid_error_code' },
  ])('records $recorded for error=$error', async ({ error, recorded }) => {
    const started = await svc.api('alice', '/api/v1/connections', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ integration: 'legacy-api' }),
    });
    expect(started.status).toBe(201);
    const { authorizationUrl } = (await started.json()) as { authorizationUrl: string };
    const state = new URL(authorizationUrl).searchParams.get('state')!;
    const callback = new URL(`${svc.url}/oauth/callback`);
    callback.searchParams.set('state', state);
    callback.searchParams.set('error', error);
    callback.searchParams.set('error_description', `<script>${'d'.repeat(500)}</script>`);
    const res = await fetch(callback, {
      headers: { authorization: `Bearer ${await svc.token('alice')}` },
      redirect: 'manual',
    });
    expect(res.status).toBe(302);
    const [latest] = (await svc.service.ctx.audit.list({ targetId: 'legacy-api' })).filter(
      (a) => a.action === 'authorization.failed',
    );
    expect(JSON.parse(latest!.data)).toEqual({ reason: recorded });
    const allAudit = JSON.stringify(await svc.service.ctx.audit.list({ limit: 500 }));
    expect(allAudit).not.toContain('dddddddddd');
    expect(allAudit).not.toContain('AAAAAAAAAA');
    expect(svc.logs.join('\n')).not.toContain('AAAAAAAAAA');
  });
});
