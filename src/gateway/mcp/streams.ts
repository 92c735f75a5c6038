/**
 * The GET streams this instance holds, and what it tells them: `notifications/elicitation/complete`
 * once the user finished a Connect link the session's client was given (and, since the session
 * can now reach its server, `notifications/tools/list_changed`), and for the aggregate endpoint
 * `notifications/tools/list_changed` when one of the user's connections changes. Completions and
 * connection changes are read from the database, so it does not matter which instance saw the
 * flow finish. Polled only while streams are open.
 */
import type { McpElicitationRepository } from '../../store/repos/mcp-elicitations.js';
import type { Clock } from '../../support/clock.js';
import { type SseRelay, sseMessage } from './sse.js';

/** Reads a user's connection status events after a cursor (the SSE event feed). */
export interface ConnectionEventSource {
  latestEventId(userId: string): Promise<number>;
  eventsAfter(userId: string, afterId: number): Promise<Array<{ id: number; type: string; data: string }>>;
}

export interface OpenStream {
  sessionId: string;
  userId: string;
  relay: SseRelay;
  /** Whether the client declared URL elicitation (only such clients are told of completions). */
  elicitation: boolean;
  /** End the stream once a completion was told (the client reconnects and gets the server's own stream). */
  endOnCompletion?: boolean;
  /** Aggregate streams also follow the user's connection changes. */
  followConnections?: (integrationId: string) => boolean;
}

export interface StreamWatcherOptions {
  elicitations: McpElicitationRepository;
  events: ConnectionEventSource;
  clock: Clock;
  pollMs?: number;
  onError?: (error: unknown) => void;
}

/** How far back completions are looked for: instances' clocks differ a little. */
const skewMs = 5_000;
const keepAliveMs = 15_000;

export class StreamWatcher {
  readonly #o: StreamWatcherOptions;
  readonly #streams = new Map<string, Set<OpenStream>>();
  readonly #userCursors = new Map<string, number>();
  readonly #notified = new Set<string>();
  #cursor = 0;
  #timer: NodeJS.Timeout | undefined;
  #keepAlive: NodeJS.Timeout | undefined;
  #polling = false;

  constructor(options: StreamWatcherOptions) {
    this.#o = options;
  }

  get openStreams(): number {
    let n = 0;
    for (const set of this.#streams.values()) n += set.size;
    return n;
  }

  /** Follows `stream` until it closes. */
  async add(stream: OpenStream): Promise<void> {
    if (this.openStreams === 0) this.#cursor = this.#o.clock.now() - skewMs;
    if (stream.followConnections !== undefined && !this.#userCursors.has(stream.userId)) {
      this.#userCursors.set(stream.userId, await this.#o.events.latestEventId(stream.userId));
    }
    let set = this.#streams.get(stream.sessionId);
    if (set === undefined) {
      set = new Set();
      this.#streams.set(stream.sessionId, set);
    }
    set.add(stream);
    stream.relay.body.once('close', () => this.#remove(stream));
    // A first (comment) line sends the response head now: a stream may stay quiet for long.
    stream.relay.send(': open\n\n');
    this.#start();
  }

  /** Ends every stream of a session (it was deleted). */
  endSession(sessionId: string): void {
    for (const stream of this.#streams.get(sessionId) ?? []) stream.relay.end();
  }

  /** One poll (exposed for tests); runs by itself every `pollMs` while streams are open. */
  async poll(): Promise<void> {
    if (this.#polling) return;
    this.#polling = true;
    try {
      await this.#pollCompletions();
      await this.#pollConnections();
    } catch (error) {
      this.#o.onError?.(error);
    } finally {
      this.#polling = false;
    }
  }

  stop(): void {
    clearInterval(this.#timer);
    clearInterval(this.#keepAlive);
    this.#timer = undefined;
    this.#keepAlive = undefined;
  }

  async #pollCompletions(): Promise<void> {
    const sessionIds = [...this.#streams.keys()];
    if (sessionIds.length === 0) return;
    const done = await this.#o.elicitations.completedSince(sessionIds, this.#cursor - skewMs);
    for (const row of done) {
      if (row.completed_at !== null && row.completed_at > this.#cursor) this.#cursor = row.completed_at;
      if (this.#notified.has(row.id) || row.session_id === null) continue;
      this.#remember(row.id);
      for (const stream of this.#streams.get(row.session_id) ?? []) {
        if (stream.elicitation) {
          stream.relay.send(
            sseMessage({
              jsonrpc: '2.0',
              method: 'notifications/elicitation/complete',
              params: { elicitationId: row.id },
            }),
          );
        }
        stream.relay.send(sseMessage({ jsonrpc: '2.0', method: 'notifications/tools/list_changed' }));
        if (stream.endOnCompletion === true) stream.relay.end();
      }
    }
  }

  async #pollConnections(): Promise<void> {
    for (const [userId, cursor] of this.#userCursors) {
      const streams = [...this.#streams.values()].flatMap((set) =>
        [...set].filter((s) => s.userId === userId && s.followConnections !== undefined),
      );
      if (streams.length === 0) {
        this.#userCursors.delete(userId);
        continue;
      }
      const events = await this.#o.events.eventsAfter(userId, cursor);
      if (events.length === 0) continue;
      this.#userCursors.set(userId, events.at(-1)!.id);
      const integrations = events
        .filter((e) => e.type === 'connection.status')
        .map((e) => (JSON.parse(e.data) as { integration?: unknown }).integration)
        .filter((i): i is string => typeof i === 'string');
      for (const stream of streams) {
        if (integrations.some((i) => stream.followConnections?.(i) === true)) {
          stream.relay.send(sseMessage({ jsonrpc: '2.0', method: 'notifications/tools/list_changed' }));
        }
      }
    }
  }

  #remember(id: string): void {
    if (this.#notified.size >= 10_000) this.#notified.delete(this.#notified.values().next().value as string);
    this.#notified.add(id);
  }

  #start(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => void this.poll(), this.#o.pollMs ?? 500);
    this.#timer.unref();
    // A comment line now and then keeps idle streams open through proxies and idle timeouts.
    this.#keepAlive = setInterval(() => {
      for (const set of this.#streams.values()) for (const s of set) s.relay.send(': keep-alive\n\n');
    }, keepAliveMs);
    this.#keepAlive.unref();
  }

  #remove(stream: OpenStream): void {
    const set = this.#streams.get(stream.sessionId);
    set?.delete(stream);
    if (set?.size === 0) this.#streams.delete(stream.sessionId);
    if (this.#streams.size === 0) this.stop();
  }
}
