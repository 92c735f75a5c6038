/**
 * The in-process library (`createConnections`, src/index.ts) against the real oidc-provider and
 * demo API, next to a service instance on the same database: every call is scoped to a user
 * (another user's connection id is "not found", never a token, and starts no refresh), and the
 * documented 401 recipe (call, 401, `refreshAfterUnauthorized`, one retry) works with one forced
 * refresh at the provider, shared by callers that saw the same rejected token.
 */
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/index.js';
import {
  ConnectionNotFoundError,
  type Connections,
  createConnections,
  type UsableToken,
} from '../../src/index.js';
import { createLogger } from '../../src/observability/logger.js';
import { databaseKinds } from '../support/databases.js';
import { type Lifecycle, startLifecycle } from '../support/lifecycle.js';

describe.each(databaseKinds)('createConnections on %s', (kind) => {
  let lc: Lifecycle;
  let lib: Connections;
  let id: string;
  const owner = 'lib-alice';

  beforeAll(async () => {
    lc = await startLifecycle({ kind, webhooks: false });
    const svc = await lc.startService({ background: false });
    id = await lc.connect(svc, owner);
    const port = lc.takePort();
    lib = await createConnections({
      config: validateConfig({
        ...lc.sharedConfig(),
        server: { port, host: '127.0.0.1', publicUrl: `http://127.0.0.1:${port}` },
      }),
      logger: createLogger({ level: 'warn', destination: new Writable({ write: (_c, _e, cb) => cb() }) }),
    });
  });
  afterAll(async () => {
    await lib?.close();
    await lc?.close();
  });

  /** A call to the demo API with the token, as a host's SDK would make it. */
  const callApi = (token: UsableToken) =>
    fetch(`${lc.api.url}/items`, { headers: { authorization: token.authorization } });

  it("gives the owner a working token and lists the owner's connection without tokens", async () => {
    const token = await lib.getAccessToken(owner, id);
    expect(token.connectionId).toBe(id);
    expect((await callApi(token)).status).toBe(200);
    const list = await lib.listConnections(owner);
    expect(list.map((c) => c.id)).toEqual([id]);
    expect(JSON.stringify(list)).not.toContain(token.value);
    expect(JSON.stringify({ token })).toBe('{"token":"[redacted]"}');
  });

  it("treats another user's connection id as not found, with no token and no refresh", async () => {
    const owners = await lib.getAccessToken(owner, id);
    const refreshes = lc.refreshCount();
    for (const call of [
      () => lib.getAccessToken('lib-mallory', id),
      () => lib.refreshAfterUnauthorized('lib-mallory', id, owners),
    ]) {
      const error = await call().then(
        (t) => t,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ConnectionNotFoundError);
      expect(String((error as Error).message)).not.toContain(owners.value);
    }
    expect(await lib.listConnections('lib-mallory')).toEqual([]);
    expect(lc.refreshCount()).toBe(refreshes);
    // An id that exists nowhere reads the same as another user's.
    await expect(lib.getAccessToken(owner, '00000000-0000-4000-8000-000000000000')).rejects.toBeInstanceOf(
      ConnectionNotFoundError,
    );
  });

  it('after a 401: one forced refresh, one retry that works, and a second caller shares it', async () => {
    const rejected = await lib.getAccessToken(owner, id);
    lc.api.failNextWithUnauthorized(1);
    const first = await callApi(rejected);
    expect(first.status).toBe(401);

    const refreshes = lc.refreshCount();
    const renewed = await lib.refreshAfterUnauthorized(owner, id, rejected);
    expect(lc.refreshCount()).toBe(refreshes + 1);
    expect(renewed.value).not.toBe(rejected.value);
    const retry = await callApi(renewed);
    expect(retry.status).toBe(200);
    expect((await retry.json()).items).toHaveLength(3);

    // Another caller that saw the same rejected token gets the new one without a second refresh.
    const again = await lib.refreshAfterUnauthorized(owner, id, rejected);
    expect(again.value).toBe(renewed.value);
    expect(lc.refreshCount()).toBe(refreshes + 1);
    // And the stored token is the renewed one.
    expect((await lib.getAccessToken(owner, id)).value).toBe(renewed.value);
  });
});
