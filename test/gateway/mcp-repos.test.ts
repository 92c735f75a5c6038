import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../../src/store/database.js';
import {
  elicitationScopes,
  elicitationTtlMs,
  McpElicitationRepository,
} from '../../src/store/repos/mcp-elicitations.js';
import { McpGatewaySessionRepository } from '../../src/store/repos/mcp-gateway-sessions.js';
import { createTestStore, databaseKinds, type TestDatabase } from '../support/databases.js';

describe.each(databaseKinds)('MCP gateway repositories on %s', (kind) => {
  let store: Store;
  let database: TestDatabase;
  let sessions: McpGatewaySessionRepository;
  let elicitations: McpElicitationRepository;
  beforeAll(async () => {
    ({ store, database } = await createTestStore(kind));
    sessions = new McpGatewaySessionRepository(store.db);
    elicitations = new McpElicitationRepository(store.db);
  });
  afterAll(async () => {
    await store.close();
    await database.drop();
  });

  it('finds a session only for its own user and keeps the initialize data', async () => {
    await sessions.create({
      id: 's1',
      userId: 'alice',
      integrationId: 'tracker',
      protocolVersion: '2025-06-18',
      clientInfo: { name: 'agent', version: '1' },
      clientCapabilities: { elicitation: { url: {} } },
      upstreamSessionId: null,
      now: 1_000,
    });
    const row = await sessions.findForUser('s1', 'alice');
    expect(row?.integration_id).toBe('tracker');
    expect(row?.created_at).toBe(1_000);
    expect(JSON.parse(row?.client_capabilities ?? '{}')).toEqual({ elicitation: { url: {} } });
    expect(await sessions.findForUser('s1', 'bob')).toBeUndefined();
    expect(await sessions.delete('s1', 'bob')).toBe(false);
  });

  it('stores the upstream session id once, fenced on the value it expects', async () => {
    expect(await sessions.setUpstreamSessionId('s1', 'up-1', null, '2025-03-26')).toBe(true);
    expect((await sessions.findForUser('s1', 'alice'))?.upstream_protocol_version).toBe('2025-03-26');
    expect(await sessions.setUpstreamSessionId('s1', 'up-2', null)).toBe(false);
    expect((await sessions.findForUser('s1', 'alice'))?.upstream_session_id).toBe('up-1');
    expect(await sessions.setUpstreamSessionId('s1', null, 'up-1')).toBe(true);
    expect((await sessions.findForUser('s1', 'alice'))?.upstream_session_id).toBeNull();
  });

  it('expires idle sessions and deletes for the owner', async () => {
    await sessions.create({
      id: 's2',
      userId: 'alice',
      integrationId: null,
      protocolVersion: '2025-06-18',
      clientInfo: {},
      clientCapabilities: {},
      upstreamSessionId: null,
      now: 1_000,
    });
    await sessions.touch('s2', 5_000);
    expect(await sessions.deleteIdle(2_000)).toBe(1); // s1, last seen at 1000
    expect(await sessions.findForUser('s1', 'alice')).toBeUndefined();
    expect(await sessions.delete('s2', 'alice')).toBe(true);
    expect(await sessions.findForUser('s2', 'alice')).toBeUndefined();
  });

  it('hands out opaque elicitation ids tied to one user, until they expire', async () => {
    const e = await elicitations.create({
      userId: 'alice',
      integrationId: 'tracker',
      sessionId: 'sx',
      scopes: ['read', 'write'],
      now: 10_000,
    });
    expect(e.id).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(e.expires_at).toBe(10_000 + elicitationTtlMs);
    const found = await elicitations.findForUser(e.id, 'alice', 10_001);
    expect(found?.status).toBe('pending');
    expect(found && elicitationScopes(found)).toEqual(['read', 'write']);
    expect(await elicitations.findForUser(e.id, 'bob', 10_001)).toBeUndefined();
    expect(await elicitations.findForUser(e.id, 'alice', e.expires_at)).toBeUndefined();
  });

  it('counts recent links per session and integration and reports completions once', async () => {
    const a = await elicitations.create({
      userId: 'alice',
      integrationId: 'tracker',
      sessionId: 'sy',
      scopes: null,
      now: 20_000,
    });
    await elicitations.create({
      userId: 'alice',
      integrationId: 'tracker',
      sessionId: 'sy',
      scopes: null,
      now: 21_000,
    });
    await elicitations.create({
      userId: 'alice',
      integrationId: 'other',
      sessionId: 'sy',
      scopes: null,
      now: 21_000,
    });
    expect(await elicitations.countRecent('sy', 'tracker', 20_000)).toBe(2);
    expect(await elicitations.countRecent('sy', 'tracker', 20_500)).toBe(1);
    expect(elicitationScopes(a)).toBeNull();

    expect(await elicitations.completedSince(['sy'], 0)).toEqual([]);
    expect(await elicitations.markComplete(a.id, 30_000)).toBe(true);
    expect(await elicitations.markComplete(a.id, 30_001)).toBe(false);
    const done = await elicitations.completedSince(['sy', 'nope'], 0);
    expect(done.map((r) => [r.id, r.status, r.completed_at])).toEqual([[a.id, 'complete', 30_000]]);
    expect(await elicitations.completedSince(['sy'], 30_000)).toEqual([]);
    expect(await elicitations.completedSince([], 0)).toEqual([]);
  });

  it('prunes expired links', async () => {
    const before = await elicitations.deleteExpired(Number.MAX_SAFE_INTEGER);
    expect(before).toBeGreaterThanOrEqual(4);
    expect(await elicitations.countRecent('sy', 'tracker', 0)).toBe(0);
  });
});
