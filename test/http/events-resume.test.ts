/**
 * `GET /api/v1/events` resumed with `Last-Event-ID` (WHATWG HTML §9.2.4): events published while
 * a browser was disconnected are delivered when it reconnects, in order, none twice, and never
 * another user's, whatever id it sends. Events are published through the service's own feed
 * (the `events` table every instance's streams poll).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, databaseKinds, type TestDatabase } from '../support/databases.js';
import { startTestService, type TestService } from '../support/service.js';

interface SseEvent {
  id: number;
  event: string;
  data: Record<string, unknown>;
}

interface Stream {
  events: SseEvent[];
  /** Waits until `n` events have arrived (or fails after `timeoutMs`). */
  waitForCount(n: number, timeoutMs?: number): Promise<void>;
  close(): void;
}

/** Opens the stream for `userId`, with `Last-Event-ID` when given, and parses events as they come. */
async function openStream(svc: TestService, userId: string, lastEventId?: number | string): Promise<Stream> {
  const controller = new AbortController();
  const headers: Record<string, string> =
    lastEventId === undefined ? {} : { 'last-event-id': String(lastEventId) };
  const r = await svc.api(userId, '/api/v1/events', { headers, signal: controller.signal });
  expect(r.status).toBe(200);
  expect(r.headers.get('content-type')).toMatch(/^text\/event-stream/);
  const events: SseEvent[] = [];
  const reader = r.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  void (async () => {
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        buffer += decoder.decode(value, { stream: true });
        for (let end = buffer.indexOf('\n\n'); end !== -1; end = buffer.indexOf('\n\n')) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const field = (name: string) =>
            block
              .split('\n')
              .find((l) => l.startsWith(`${name}: `))
              ?.slice(name.length + 2);
          const data = field('data');
          if (data === undefined) continue;
          events.push({
            id: Number(field('id')),
            event: field('event') ?? 'message',
            data: JSON.parse(data),
          });
        }
      }
    } catch {
      // aborted
    }
  })();
  return {
    events,
    async waitForCount(n, timeoutMs = 8_000) {
      const deadline = Date.now() + timeoutMs;
      while (events.length < n) {
        if (Date.now() > deadline) throw new Error(`stream for ${userId}: ${events.length} of ${n} events`);
        await sleep(50);
      }
    },
    close: () => controller.abort(),
  };
}

describe.each(databaseKinds)('SSE Last-Event-ID resume on %s', (kind) => {
  let database: TestDatabase;
  let svc: TestService;

  beforeAll(async () => {
    database = await createTestDatabase(kind);
    svc = await startTestService({ database, serviceOptions: { background: false } });
  });
  afterAll(async () => {
    await svc?.close();
    await database?.drop();
  });

  const publish = (userId: string, marker: string) =>
    svc.service.ctx.notifications.publish(svc.service.ctx.store.db, userId, 'connection.status', { marker });
  const markers = (s: Stream) => s.events.map((e) => e.data.marker);
  /** Longer than two polls of the stream (1 s each): anything still to come would have come. */
  const settle = () => sleep(2_300);

  it('delivers what was missed while disconnected, once, and only the caller’s own', async () => {
    const first = await openStream(svc, 'sse-alice');
    await publish('sse-alice', 'a1');
    await publish('sse-bob', 'b1');
    await publish('sse-alice', 'a2');
    await first.waitForCount(2);
    first.close();
    expect(markers(first)).toEqual(['a1', 'a2']);
    const lastSeen = first.events[1]!.id;
    expect(first.events[0]!.id).toBeLessThan(lastSeen);

    // Disconnected: more events, the user's and another user's.
    await publish('sse-alice', 'a3');
    await publish('sse-bob', 'b2');
    await publish('sse-alice', 'a4');

    const resumed = await openStream(svc, 'sse-alice', lastSeen);
    await resumed.waitForCount(2);
    await publish('sse-alice', 'a5');
    await resumed.waitForCount(3);
    await settle();
    resumed.close();
    // Exactly the missed ones, in order, then the new one: nothing twice, nothing of bob's.
    expect(markers(resumed)).toEqual(['a3', 'a4', 'a5']);
    const ids = resumed.events.map((e) => e.id);
    expect(ids.every((id) => id > lastSeen)).toBe(true);
    expect([...ids].sort((a, b) => a - b)).toEqual(ids);
  });

  it('never sends another user’s events, even to a Last-Event-ID before them', async () => {
    const bob = await openStream(svc, 'sse-bob', 0);
    await bob.waitForCount(2);
    await settle();
    bob.close();
    expect(markers(bob)).toEqual(['b1', 'b2']);
    // A user with no events of their own, resuming from 0, gets nothing at all.
    const mallory = await openStream(svc, 'sse-mallory', 0);
    await settle();
    mallory.close();
    expect(mallory.events).toEqual([]);
  });

  it('without Last-Event-ID starts from now: no replay of the past', async () => {
    const fresh = await openStream(svc, 'sse-alice');
    await publish('sse-alice', 'a6');
    await fresh.waitForCount(1);
    await settle();
    fresh.close();
    expect(markers(fresh)).toEqual(['a6']);
  });

  it('refuses a Last-Event-ID that is not an event id', async () => {
    const r = await svc.api('sse-alice', '/api/v1/events', { headers: { 'last-event-id': 'abc' } });
    expect(r.status).toBe(400);
    expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  });
});
