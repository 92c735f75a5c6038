/**
 * Server-sent events for the MCP gateway. The gateway passes an upstream's SSE bytes through
 * untouched while watching them: which JSON-RPC responses went by (so a stream that drops before
 * answering can be answered with errors), and where events end (so events of our own, such as
 * `notifications/elicitation/complete`, go in between upstream events, never inside one).
 * Hand-rolled: the field's parser (eventsource-parser) is not one of our dependencies, and the
 * part needed here (line splitting, `data:` fields, blank-line dispatch) is small.
 * @see WHATWG HTML §9.2.6 (parsing an event stream)
 */
import { PassThrough, type Readable } from 'node:stream';
import type { JSONRPCRequest, RequestId } from './jsonrpc.js';

/** One `data`-carrying event as dispatched. */
export interface SseEvent {
  event: string;
  data: string;
  id?: string;
}

/** Formats one SSE `message` event carrying a JSON-RPC message. */
export function sseMessage(message: unknown): string {
  return `event: message\ndata: ${JSON.stringify(message)}\n\n`;
}

/**
 * Incremental SSE parser: feed it bytes, it calls `onEvent` per dispatched event and knows
 * whether everything fed so far ended exactly at an event boundary.
 */
export class SseParser {
  #buffer = '';
  #data: string[] = [];
  #event = '';
  #id: string | undefined;
  /** True while the bytes seen end between events (no partial line, no pending fields). */
  #atBoundary = true;
  readonly #decoder = new TextDecoder();
  readonly #onEvent: (event: SseEvent) => void;

  constructor(onEvent: (event: SseEvent) => void) {
    this.#onEvent = onEvent;
  }

  get atBoundary(): boolean {
    return this.#atBoundary;
  }

  feed(chunk: Uint8Array): void {
    this.#buffer += this.#decoder.decode(chunk, { stream: true });
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.#buffer);
      // A lone `\r` at the end may be the first half of `\r\n`: wait for more.
      if (match === null || (match[0] === '\r' && match.index === this.#buffer.length - 1)) break;
      const line = this.#buffer.slice(0, match.index);
      this.#buffer = this.#buffer.slice(match.index + match[0].length);
      this.#line(line);
    }
    this.#atBoundary =
      this.#buffer === '' && this.#data.length === 0 && this.#event === '' && !this.#pendingId;
  }

  #pendingId = false;

  #line(line: string): void {
    if (line === '') {
      if (this.#data.length > 0) {
        const event: SseEvent = { event: this.#event || 'message', data: this.#data.join('\n') };
        if (this.#id !== undefined) event.id = this.#id;
        this.#onEvent(event);
      }
      this.#data = [];
      this.#event = '';
      this.#pendingId = false;
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.#data.push(value);
    else if (field === 'event') this.#event = value;
    else if (field === 'id') {
      this.#id = value;
      this.#pendingId = true;
    }
  }
}

/**
 * An SSE response body that relays an upstream stream (if any) byte for byte and lets the
 * gateway add events of its own at event boundaries.
 */
export class SseRelay {
  readonly body = new PassThrough();
  readonly #parser: SseParser;
  readonly #queued: string[] = [];
  #ended = false;

  constructor(onEvent: (event: SseEvent) => void = () => {}) {
    this.#parser = new SseParser(onEvent);
  }

  get ended(): boolean {
    return this.#ended || this.body.destroyed;
  }

  /**
   * Relays `upstream` until it ends; resolves with how it ended. The parser sees every chunk
   * before the caller does, so `onEvent` runs before the bytes are written on.
   */
  relay(upstream: Readable): Promise<'end' | 'error'> {
    return new Promise((resolve) => {
      upstream.on('data', (chunk: Buffer) => {
        if (this.ended) return;
        this.#parser.feed(chunk);
        const more = this.body.write(chunk);
        if (this.#parser.atBoundary) this.#flush();
        // A slow client slows the server down instead of filling our memory.
        if (!more) {
          upstream.pause();
          this.body.once('drain', () => upstream.resume());
        }
      });
      upstream.once('end', () => resolve('end'));
      upstream.once('error', () => resolve('error'));
      upstream.once('close', () => resolve('error'));
      this.body.once('close', () => upstream.destroy());
    });
  }

  /** Adds one event: at once when between upstream events, else after the current one. */
  send(text: string): void {
    if (this.ended) return;
    this.#queued.push(text);
    if (this.#parser.atBoundary) this.#flush();
  }

  /** Ends the response (after what is queued; a partial upstream event is closed off first). */
  end(): void {
    if (this.ended) return;
    if (!this.#parser.atBoundary && this.#queued.length > 0) this.body.write('\n\n');
    this.#flush();
    this.#ended = true;
    this.body.end();
  }

  #flush(): void {
    while (this.#queued.length > 0) this.body.write(this.#queued.shift()!);
  }
}

/**
 * Relays an SSE answer to `requests`. If it breaks off before answering every one, the
 * messages `onUnanswered` gives for the rest are added; not when the server made the stream
 * resumable (an event carried an id) and ended it cleanly: the client then resumes it.
 * @see MCP 2025-11-25, Transports §Resumability and Redelivery
 */
export function relayAnswers(
  upstream: Readable,
  requests: readonly JSONRPCRequest[],
  onUnanswered: (ids: RequestId[]) => unknown[],
): SseRelay {
  const pending = new Set<RequestId>(requests.map((r) => r.id));
  let resumable = false;
  const relay = new SseRelay((event) => {
    if (event.id !== undefined) resumable = true;
    for (const message of messagesIn(event.data)) {
      if (isAnswer(message)) pending.delete(message.id as RequestId);
    }
  });
  void relay.relay(upstream).then((how) => {
    if (pending.size > 0 && (how === 'error' || !resumable)) {
      for (const message of onUnanswered([...pending])) relay.send(sseMessage(message));
    }
    relay.end();
  });
  return relay;
}

function messagesIn(data: string): unknown[] {
  try {
    const parsed: unknown = JSON.parse(data);
    return Array.isArray(parsed) ? parsed : [parsed];
  } catch {
    return [];
  }
}

/**
 * Whether a message read from a server's stream answers a request: an id and a result or an
 * error (a cheap look, not the SDK's schema parse: it only decides which ids are answered).
 */
export function isAnswer(message: unknown): message is { id: RequestId; result?: unknown; error?: unknown } {
  return (
    typeof message === 'object' &&
    message !== null &&
    'id' in message &&
    ('result' in message || 'error' in message) &&
    !('method' in message)
  );
}
