import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseKinds } from '../support/databases.js';
import { type Lifecycle, proxyPath, startLifecycle } from '../support/lifecycle.js';
import type { TestService } from '../support/service.js';

describe.each(databaseKinds)(
  'refresh on expiry against oidc-provider (3 s tokens, rotation) on %s',
  (kind) => {
    let lc: Lifecycle;
    let svc: TestService;
    let id: string;

    beforeAll(async () => {
      lc = await startLifecycle({ kind, webhooks: false });
      // No scheduler: the proxied call is what must refresh.
      svc = await lc.startService({ background: false });
      id = await lc.connect(svc, 'u-alice');
    });

    afterAll(async () => {
      await lc?.close();
    });

    it('uses the fresh token without refreshing', async () => {
      const r = await svc.api('u-alice', proxyPath(id));
      expect(r.status).toBe(200);
      expect((await r.json()).items).toHaveLength(3);
      expect(lc.refreshCount()).toBe(0);
    });

    it('refreshes exactly once on the first call after expiry, rotating the refresh token', async () => {
      const before = await lc.connection(svc, 'u-alice', id);
      const issuedRefreshToken = lc.tokenCalls.find(
        (c) => c.grantType === 'authorization_code',
      )?.refreshToken;
      expect(issuedRefreshToken).toBeTruthy();
      await lc.waitForExpiry(svc, 'u-alice', id);
      const refreshesBefore = lc.refreshCount();

      const r = await svc.api('u-alice', proxyPath(id));
      expect(r.status).toBe(200);
      expect((await r.json()).items).toHaveLength(3);
      expect(lc.refreshCount()).toBe(refreshesBefore + 1);

      // Used right away again: no second refresh.
      expect((await svc.api('u-alice', proxyPath(id))).status).toBe(200);
      expect(lc.refreshCount()).toBe(refreshesBefore + 1);

      const after = await lc.connection(svc, 'u-alice', id);
      expect(after.status).toBe('active');
      const lastBefore = Date.parse(before.lastRefreshedAt ?? before.createdAt);
      expect(after.lastRefreshedAt).not.toBeNull();
      expect(Date.parse(after.lastRefreshedAt!)).toBeGreaterThan(lastBefore);
      expect(Date.parse(after.accessTokenExpiresAt!)).toBeGreaterThan(
        Date.parse(before.accessTokenExpiresAt!),
      );

      // The provider rotated the refresh token: the refresh presented the issued one and got a new one.
      const refreshes = lc.tokenCalls.filter((c) => c.grantType === 'refresh_token');
      expect(refreshes).toHaveLength(1);
      expect(refreshes[0]!.status).toBe(200);
      expect(refreshes[0]!.presentedRefreshToken).toBe(issuedRefreshToken);
      expect(refreshes[0]!.refreshToken).toBeTruthy();
      expect(refreshes[0]!.refreshToken).not.toBe(issuedRefreshToken);
      expect(lc.oidc.counters.refreshReuseDetected).toBe(0);
    });

    it('refreshes the next expiry with the rotated refresh token (it was stored), again exactly once', async () => {
      await lc.waitForExpiry(svc, 'u-alice', id);
      const refreshesBefore = lc.refreshCount();
      const r = await svc.api('u-alice', proxyPath(id, 'me'));
      expect(r.status).toBe(200);
      expect((await r.json()).sub).toBe('alice');
      expect(lc.refreshCount()).toBe(refreshesBefore + 1);

      const refreshes = lc.tokenCalls.filter((c) => c.grantType === 'refresh_token');
      expect(refreshes).toHaveLength(2);
      expect(refreshes[1]!.presentedRefreshToken).toBe(refreshes[0]!.refreshToken);
      expect(refreshes[1]!.refreshToken).not.toBe(refreshes[0]!.refreshToken);
      expect(lc.oidc.counters.refreshReuseDetected).toBe(0);
      expect((await lc.connection(svc, 'u-alice', id)).status).toBe('active');
    });
  },
);
