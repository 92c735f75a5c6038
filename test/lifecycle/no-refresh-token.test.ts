/**
 * Regression (issue 8, reliability 3d): a connection without a refresh token went `needs_reauth`
 * on any single 401 from the API, even while its access token was valid (an API's 401 can be a
 * permission or path problem). The rule now: while the token has not expired, a 401 is passed
 * to the caller and the status does not change; once it has expired, the connection needs
 * reconnecting (there is nothing to refresh it with).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseKinds } from '../support/databases.js';
import { type Lifecycle, proxyPath, startLifecycle } from '../support/lifecycle.js';
import type { TestService } from '../support/service.js';
import { type RecordingServer, startRecordingServer } from '../support/webhook-receiver.js';

describe.each(databaseKinds)(
  'a connection without a refresh token and an API that answers 401, on %s',
  (kind) => {
    let lc: Lifecycle;
    let svc: TestService;
    let api: RecordingServer;

    beforeAll(async () => {
      // An API that refuses every call, whatever the token (as one refusing a path or permission would).
      api = await startRecordingServer({
        answer: () => ({
          status: 401,
          headers: {
            'content-type': 'application/json',
            'www-authenticate': 'Bearer error="insufficient_scope"',
          },
          body: '{"error":"not allowed here"}',
        }),
      });
      lc = await startLifecycle({
        kind,
        extraIntegrations: [
          {
            id: 'online',
            name: 'Online only',
            provider: 'demo',
            // No offline_access: the provider issues no refresh token.
            scopes: ['openid', 'profile', 'items:read'],
            api: { baseUrl: api.url },
          },
        ],
      });
      svc = await lc.startService({ schedulerIntervalMs: 600_000 });
    });

    afterAll(async () => {
      await lc?.close();
      await api?.close();
    });

    it('passes a 401 through while the token is valid; needs reconnecting only once it has expired', async () => {
      const userId = 'u-online';
      const id = await lc.connect(svc, userId, 'alice', 'online');
      const row = await svc.service.ctx.store.db
        .selectFrom('connections')
        .selectAll()
        .where('id', '=', id)
        .executeTakeFirstOrThrow();
      expect(row.refresh_token_sealed).toBeNull();
      // The lifecycle provider's tokens live 3 s; this one is made to live a minute (the API here
      // does not look at it), so it is clearly valid when the API answers 401.
      const setExpiry = async (at: number) => {
        await svc.service.ctx.store.db
          .updateTable('connections')
          .set({ access_token_expires_at: at, next_refresh_at: null })
          .where('id', '=', id)
          .execute();
        svc.service.ctx.connectionCache.invalidate(id);
      };
      await setExpiry(Date.now() + 60_000);

      for (let i = 0; i < 2; i++) {
        const r = await svc.api(userId, proxyPath(id, 'anything'));
        expect(r.status).toBe(401);
        expect(await r.json()).toEqual({ error: 'not allowed here' });
      }
      expect(api.received.length).toBe(2); // one request per call: the same token is not sent twice
      expect(await lc.connection(svc, userId, id)).toMatchObject({ status: 'active' });
      const notes = (await (await svc.api(userId, '/api/v1/notifications')).json()) as unknown[];
      expect(notes).toEqual([]);

      // Expired, and nothing to refresh with: now the owner must reconnect.
      await setExpiry(Date.now() - 1_000);
      const expired = await svc.api(userId, proxyPath(id, 'anything'));
      expect(expired.status).toBe(409);
      expect(await expired.json()).toMatchObject({
        code: 'connection_needs_reauth',
        reason: 'no_refresh_token',
      });
      expect(await lc.connection(svc, userId, id)).toMatchObject({ status: 'needs_reauth' });
    });
  },
);
