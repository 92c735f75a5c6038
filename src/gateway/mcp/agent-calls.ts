/**
 * The aggregate's calls in flight on this instance, and what only this instance can do for
 * them: abort one when the agent cancels it (the cancellation comes in a request of its own),
 * and relay a server's request (an elicitation, a sampling request) to the agent on the stream
 * of the call it belongs to, then hand the agent's answer (which comes in a later POST) back.
 */
import { randomBytes } from 'node:crypto';
import { isJSONRPCErrorResponse, type JSONRPCMessage, McpError } from '@modelcontextprotocol/sdk/types.js';
import { isAnswerMessage, type RequestId } from './jsonrpc.js';

/** Writes a message to the agent on the stream of the request it relates to. */
export type ToAgent = (message: JSONRPCMessage, relatedRequestId: RequestId) => Promise<void>;

/** How long a relayed request waits for the agent's answer (a person may be filling in a form). */
const relayTimeoutMs = 10 * 60_000;

export class AgentCalls {
  /** Requests relayed to agents, waiting for their answers, by our id. */
  readonly #relays = new Map<string, (answer: JSONRPCMessage | Error) => void>();
  /** Calls running here, by session and the agent's request id. */
  readonly #running = new Map<string, RunningCall>();

  /** Tracks a call; it is cancelled when the agent cancels it. Call `done` when it ends. */
  start(sessionId: string, requestId: RequestId): RunningCall {
    const key = keyOf(sessionId, requestId);
    const running = new RunningCall(() => {
      if (this.#running.get(key) === running) this.#running.delete(key);
    });
    this.#running.set(key, running);
    return running;
  }

  /**
   * Takes what is for calls in flight out of a POST: cancellations abort their call, answers to
   * relayed requests go to the call waiting for them. Returns the messages left for the server.
   */
  take(sessionId: string, messages: readonly JSONRPCMessage[]): JSONRPCMessage[] {
    return messages.filter((message) => {
      const m = message as { method?: unknown; params?: { requestId?: unknown } };
      if (m.method === 'notifications/cancelled') {
        this.#running.get(keyOf(sessionId, m.params?.requestId))?.cancel();
      }
      if (!isAnswerMessage(message)) return true;
      const settle = typeof message.id === 'string' ? this.#relays.get(message.id) : undefined;
      settle?.(message);
      return settle === undefined;
    });
  }

  /** Sends a server's request to the agent with an id of ours and waits for the answer. */
  async ask(
    toAgent: ToAgent,
    relatedRequestId: RequestId,
    request: { method: string; params?: Record<string, unknown> },
    schema: { parse(value: unknown): unknown },
    signal: AbortSignal,
  ): Promise<unknown> {
    const id = `nunq-relay-${randomBytes(9).toString('base64url')}`;
    const answer = new Promise<JSONRPCMessage>((resolve, reject) => {
      const timer = setTimeout(() => settle(new Error('the agent did not answer in time')), relayTimeoutMs);
      const onAbort = () => settle(new Error('the call was cancelled'));
      const settle = (outcome: JSONRPCMessage | Error) => {
        clearTimeout(timer);
        this.#relays.delete(id);
        signal.removeEventListener('abort', onAbort);
        if (outcome instanceof Error) reject(outcome);
        else resolve(outcome);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.#relays.set(id, settle);
    });
    await toAgent(
      {
        jsonrpc: '2.0',
        id,
        method: request.method,
        ...(request.params === undefined ? {} : { params: request.params }),
      },
      relatedRequestId,
    );
    const message = await answer;
    if (isJSONRPCErrorResponse(message)) {
      throw new McpError(message.error.code, message.error.message, message.error.data);
    }
    return schema.parse((message as { result?: unknown }).result);
  }
}

/**
 * A call in flight, which the agent may cancel. Most calls end without a cancellation and without
 * anyone asking for an `AbortSignal`: the signal (an `AbortController`, and every listener on it,
 * showed in the aggregate's profile) is made only when asked for; `onCancel` is the cheap way to
 * wait for a cancellation.
 */
export class RunningCall {
  readonly done: () => void;
  #cancelled = false;
  #controller: AbortController | undefined;
  #listeners: Array<() => void> | undefined;

  constructor(done: () => void) {
    this.done = done;
  }

  get cancelled(): boolean {
    return this.#cancelled;
  }

  /** Aborts when the call is cancelled (at once for one that already was). */
  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#cancelled) this.#controller.abort();
    }
    return this.#controller.signal;
  }

  /** Runs `listener` once the call is cancelled; the returned function stops that. */
  onCancel(listener: () => void): () => void {
    this.#listeners ??= [];
    this.#listeners.push(listener);
    return () => {
      const at = this.#listeners?.indexOf(listener) ?? -1;
      if (at !== -1) this.#listeners!.splice(at, 1);
    };
  }

  cancel(): void {
    if (this.#cancelled) return;
    this.#cancelled = true;
    const listeners = this.#listeners ?? [];
    this.#listeners = undefined;
    for (const listener of listeners) listener();
    this.#controller?.abort();
  }
}

function keyOf(sessionId: string, requestId: unknown): string {
  return `${sessionId}\u0000${JSON.stringify(requestId)}`;
}
