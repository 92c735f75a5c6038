import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { constantTimeEqual, SessionService, sessionCookieName } from '../../src/identity/session-service.js';
import type { Store } from '../../src/store/database.js';
import { SessionRepository } from '../../src/store/repos/sessions.js';
import { createTestStore, type TestDatabase } from '../support/databases.js';

describe('SessionService', () => {
  let store: Store;
  let database: TestDatabase;
  let time = 1_700_000_000_000;
  const clock = { now: () => time };
  let sessions: SessionService;

  beforeAll(async () => {
    ({ store, database } = await createTestStore('sqlite'));
    sessions = new SessionService(new SessionRepository(store.db), clock, 3600, ['boss']);
  });
  afterAll(async () => {
    await store.close();
    await database.drop();
  });

  it('starts a session whose cookie resolves to the user, with a CSRF token', async () => {
    const cookie = await sessions.start({ userId: 'alice', name: 'Alice', role: null });
    expect(cookie).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const identity = await sessions.resolve(cookie);
    expect(identity).toMatchObject({ userId: 'alice', name: 'Alice', role: 'user', via: 'session' });
    expect(identity?.csrfToken).toMatch(/^[A-Za-z0-9_-]{32}$/);
  });

  it('stores only the hash of the cookie value', async () => {
    const cookie = await sessions.start({ userId: 'hashed', name: null, role: null });
    const rows = await store.db.selectFrom('sessions').selectAll().where('user_id', '=', 'hashed').execute();
    expect(rows).toHaveLength(1);
    expect(rows[0]!.id_hash).toBe(createHash('sha256').update(cookie).digest('hex'));
    expect(JSON.stringify(rows)).not.toContain(cookie);
  });

  it('gives every session its own cookie and CSRF token', async () => {
    const a = await sessions.start({ userId: 'alice', name: null, role: null });
    const b = await sessions.start({ userId: 'alice', name: null, role: null });
    expect(a).not.toBe(b);
    expect((await sessions.resolve(a))?.csrfToken).not.toBe((await sessions.resolve(b))?.csrfToken);
  });

  it('makes admins from the role or the admins list', async () => {
    const byRole = await sessions.start({ userId: 'carol', name: null, role: 'admin' });
    const byList = await sessions.start({ userId: 'boss', name: null, role: null });
    expect((await sessions.resolve(byRole))?.role).toBe('admin');
    expect((await sessions.resolve(byList))?.role).toBe('admin');
  });

  it('expires sessions after the TTL', async () => {
    const cookie = await sessions.start({ userId: 'dave', name: null, role: null });
    time += 3599_000;
    expect(await sessions.resolve(cookie)).toBeDefined();
    time += 1000;
    expect(await sessions.resolve(cookie)).toBeUndefined();
  });

  it('ends a session', async () => {
    const cookie = await sessions.start({ userId: 'erin', name: null, role: null });
    await sessions.end(cookie);
    expect(await sessions.resolve(cookie)).toBeUndefined();
  });

  it('resolves unknown or odd-sized cookie values to nobody', async () => {
    expect(await sessions.resolve('x'.repeat(43))).toBeUndefined();
    expect(await sessions.resolve('')).toBeUndefined();
    expect(await sessions.resolve('x'.repeat(5000))).toBeUndefined();
  });

  it('reports its TTL in seconds', () => {
    expect(sessions.ttlSeconds).toBe(3600);
  });
});

describe('session helpers', () => {
  it('names the cookie __Host- only on https', () => {
    expect(sessionCookieName(true)).toBe('__Host-nunq_session');
    expect(sessionCookieName(false)).toBe('nunq_session');
  });

  it('compares strings exactly', () => {
    expect(constantTimeEqual('abc', 'abc')).toBe(true);
    expect(constantTimeEqual('abc', 'abd')).toBe(false);
    expect(constantTimeEqual('abc', 'abcd')).toBe(false);
    expect(constantTimeEqual('', '')).toBe(true);
  });
});
