import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultConnectionCacheMs } from '../../src/connections/connection-cache.js';
import { databaseKinds } from '../support/databases.js';
import { type Lifecycle, proxyPath, startLifecycle } from '../support/lifecycle.js';
import type { TestService } from '../support/service.js';

/**
 * The proxy reuses a connection row it read for `defaultConnectionCacheMs` per instance. What that
 * may and may not change, across instances on one database: a new connection is usable at once
 * everywhere, a Disconnect stops the instance that did it at once and every other one within the
 * cache time, a Reconnect after needs-reauth is seen at once, and users stay isolated.
 */
describe.each(databaseKinds)('the proxy across instances, with the row cache, on %s', (kind) => {
  let lc: Lifecycle;
  let a: TestService;
  let b: TestService;
  /** An instance with the cache off: sees every change at once. */
  let uncached: TestService;

  beforeAll(async () => {
    lc = await startLifecycle({ kind, webhooks: false });
    a = await lc.startService({ background: false });
    b = await lc.startService({ background: false });
    uncached = await lc.startService({ background: false, connectionCacheMs: 0 });
  });

  afterAll(async () => {
    await lc?.close();
  });

  const status = async (svc: TestService, user: string, id: string) =>
    (await svc.api(user, proxyPath(id))).status;

  it('a connection made on one instance is usable on every other at once', async () => {
    const id = await lc.connect(a, 'u-new');
    expect(await status(b, 'u-new', id)).toBe(200);
    expect(await status(uncached, 'u-new', id)).toBe(200);
  });

  it('keeps users apart: a cached row of one user is 404 to another', async () => {
    const id = await lc.connect(a, 'u-owner');
    expect(await status(b, 'u-owner', id)).toBe(200); // now cached on b
    const r = await b.api('u-other', proxyPath(id));
    expect(r.status).toBe(404);
    expect(await r.json()).toMatchObject({ code: 'connection_not_found' });
    expect(await status(b, 'u-owner', id)).toBe(200);
  });

  it('Disconnect stops this instance at once and another within the cache time', async () => {
    const id = await lc.connect(a, 'u-leaving');
    for (const svc of [a, b, uncached]) expect(await status(svc, 'u-leaving', id)).toBe(200);
    const r = await a.api('u-leaving', `/api/v1/connections/${id}`, { method: 'DELETE' });
    expect(r.status).toBe(204);
    const gone = Date.now();
    expect(await status(a, 'u-leaving', id)).toBe(404);
    expect(await status(uncached, 'u-leaving', id)).toBe(404);
    let stoppedAfter = Number.POSITIVE_INFINITY;
    while (Date.now() - gone < defaultConnectionCacheMs + 2_000) {
      if ((await status(b, 'u-leaving', id)) === 404) {
        stoppedAfter = Date.now() - gone;
        break;
      }
      await sleep(50);
    }
    expect(stoppedAfter).toBeLessThanOrEqual(defaultConnectionCacheMs + 250);
  });

  it('a Reconnect after needs-reauth is usable at once on every instance', async () => {
    const id = await lc.connect(a, 'u-back');
    expect(await status(b, 'u-back', id)).toBe(200);
    // The grant ends at the provider; the token lasts until it expires, then the refresh fails.
    expect(await lc.oidc.revokeGrants()).toBeGreaterThanOrEqual(1);
    await lc.waitForExpiry(a, 'u-back', id);
    const refused = await b.api('u-back', proxyPath(id));
    expect(refused.status).toBe(409);
    expect(await refused.json()).toMatchObject({ code: 'connection_needs_reauth' });
    const back = await lc.reconnect(a, 'u-back', id);
    expect(back).toEqual({ outcome: 'reconnected', connection: id });
    expect(await status(b, 'u-back', id)).toBe(200);
    expect(await status(a, 'u-back', id)).toBe(200);
  });
});
