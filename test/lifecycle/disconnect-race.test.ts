/**
 * Regression (issue 8, reliability 3c): Disconnect revoked the tokens it had read, then deleted
 * the row without a version check, so a refresh that rotated the grant in between left a live
 * refresh token at the provider that nobody held any more. Here the revocation request is held
 * back while a forced refresh runs: the token revoked must be the last one the provider issued
 * to us, and that token must be dead at the provider afterwards.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOutboundFetch, type OutboundFetch } from '../../src/oauth/outbound.js';
import { databaseKinds } from '../support/databases.js';
import { type Lifecycle, startLifecycle, waitUntil } from '../support/lifecycle.js';
import type { TestService } from '../support/service.js';

describe.each(databaseKinds)('Disconnect during a refresh, on %s', (kind) => {
  let lc: Lifecycle;
  let svc: TestService;
  /** Refresh tokens the provider issued to the service, in order. */
  const issued: string[] = [];
  /** Tokens the service sent to the revocation endpoint, in order. */
  const revoked: string[] = [];
  let holdRevocation: Promise<unknown> = Promise.resolve();

  /** The real outbound fetch, recording token answers and revocations, able to hold a revocation back. */
  const watchingFetch: OutboundFetch = async (input, init) => {
    const inner = createOutboundFetch({ allow: ['127.0.0.0/8'], timeoutMs: 10_000 });
    const url = String(input);
    if (url.endsWith('/token/revocation')) {
      revoked.push(new URLSearchParams(String(init?.body)).get('token') ?? '');
      await holdRevocation;
      return inner(input, init);
    }
    const response = await inner(input, init);
    if (url.endsWith('/token')) {
      const body = (await response
        .clone()
        .json()
        .catch(() => ({}))) as { refresh_token?: unknown };
      if (typeof body.refresh_token === 'string') issued.push(body.refresh_token);
    }
    return response;
  };

  beforeAll(async () => {
    lc = await startLifecycle({ kind });
    svc = await lc.startService({ schedulerIntervalMs: 600_000, fetch: watchingFetch });
  });

  afterAll(async () => {
    await lc?.close();
  });

  it('revokes the latest refresh token, even when a refresh rotates it while Disconnect runs', async () => {
    const id = await lc.connect(svc, 'u-race', 'alice');
    expect(issued).toHaveLength(1);

    let releaseRevocation!: () => void;
    holdRevocation = new Promise<void>((r) => {
      releaseRevocation = r;
    });
    const deleting = svc.api('u-race', `/api/v1/connections/${id}`, { method: 'DELETE' });
    // Disconnect has read the row and is revoking: now a refresh runs (another caller, or the scheduler).
    await waitUntil('the revocation request', () => revoked.length === 1);
    const refreshDone = svc.service.ctx.tokens.getAccessToken(id, { force: true }).then(
      () => 'refreshed',
      (e: { code?: string }) => e.code,
    );
    await Promise.race([refreshDone, sleep(2_000)]);
    releaseRevocation();
    expect((await deleting).status).toBe(204);
    const refreshOutcome = await refreshDone;

    // Whatever the refresh did, the token revoked is the last one the provider issued us.
    expect(revoked).toEqual([issued.at(-1)]);
    // And the grant is dead at the provider: no refresh token of ours is still live there.
    for (const token of issued) {
      const model = lc.oidc.provider.RefreshToken as unknown as { find(t: string): Promise<unknown> };
      expect(await model.find(token)).toBeUndefined();
    }
    expect(await svc.service.ctx.store.db.selectFrom('connections').selectAll().execute()).toEqual([]);
    // The refresh did not go ahead behind Disconnect's back: it found the connection gone.
    expect(refreshOutcome).toBe('connection_not_found');
  });
});
