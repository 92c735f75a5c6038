/**
 * Tokens go back only to the authorization server that issued them. A connection remembers the
 * issuer of its tokens; when the integration's client now names another one (an MCP server's
 * metadata moved to a new authorization server, a provider's issuer edited), the refresh token is
 * not sent: the connection needs reconnecting (`authorization_server_changed`), and Disconnect
 * does not revoke at the new server either.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseKinds } from '../support/databases.js';
import { type Lifecycle, startLifecycle } from '../support/lifecycle.js';
import type { TestService } from '../support/service.js';

describe.each(databaseKinds)('a connection pinned to the issuer of its tokens, on %s', (kind) => {
  let lc: Lifecycle;
  let svc: TestService;

  beforeAll(async () => {
    lc = await startLifecycle({ kind });
    svc = await lc.startService({ schedulerIntervalMs: 600_000 });
  });

  afterAll(async () => {
    await lc?.close();
  });

  const row = (id: string) =>
    svc.service.ctx.store.db
      .selectFrom('connections')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirstOrThrow();

  it('records the issuer and refreshes while it is the same', async () => {
    const id = await lc.connect(svc, 'u-same');
    const stored = await row(id);
    expect(stored.issuer).toMatch(/^http:\/\/127\.0\.0\.1:\d+/);
    const before = lc.refreshCount();
    await svc.service.ctx.tokens.getAccessToken(id, { force: true });
    expect(lc.refreshCount()).toBe(before + 1);
  });

  it('never sends the refresh token to another authorization server: needs reconnecting instead', async () => {
    const id = await lc.connect(svc, 'u-moved');
    // As if the tokens had come from the server the integration used before.
    await svc.service.ctx.store.db
      .updateTable('connections')
      .set({ issuer: 'https://old-as.example' })
      .where('id', '=', id)
      .execute();
    svc.service.ctx.connectionCache.invalidate(id);
    const before = lc.refreshCount();
    await expect(svc.service.ctx.tokens.getAccessToken(id, { force: true })).rejects.toMatchObject({
      code: 'connection_needs_reauth',
    });
    expect(lc.refreshCount()).toBe(before);
    expect(await row(id)).toMatchObject({
      status: 'needs_reauth',
      status_reason: 'authorization_server_changed',
    });

    const res = await svc.api('u-moved', `/api/v1/connections/${id}`, { method: 'DELETE' });
    expect(res.status).toBe(204);
    const audit = await svc.service.ctx.audit.list({ targetId: id });
    const deleted = audit.find((a) => a.action === 'connection.deleted');
    expect(JSON.parse(deleted?.data ?? '{}').revocation).toBe('unsupported');
  });
});
