/**
 * The aggregate's hot calls, `tools/call`, `prompts/get` and `resources/read`, routed at the
 * JSON-RPC level rather than through an SDK `Server` and `Client` per call: the name
 * `<integration>__<name>` is resolved (names.ts), and the request goes to its server, renamed,
 * in the upstream session of the user's cached SDK client (upstream-clients.ts, which opens it)
 * through the forwarder `/mcp/:integrationId` uses (the user's token, one forced refresh and one
 * retry after a 401). The upstream session is shared by the user's agents on this instance, so
 * the request carries an id of ours, and the answer, JSON or SSE, goes back with the agent's.
 * An answer that comes as an event stream is relayed by routed-stream.ts.
 * What the SDK server checks for itself (params of the wrong shape, an unsupported protocol
 * version, an agent that does not accept both answer types) stays with it: `answer` then
 * returns undefined. @see MCP 2025-11-25, Basic / Transports §Sending Messages to the Server
 */
import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import type { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { isJSONRPCErrorResponse } from '@modelcontextprotocol/sdk/types.js';
import { ConnectionNeedsReauthError } from '../../connections/errors.js';
import type { RunningCall, ToAgent } from './agent-calls.js';
import {
  type GatewayAnswer,
  grantedScopes,
  isEventStream,
  reasonOf,
  sessionHeader,
  unreachable,
} from './answers.js';
import { errorResponse, type JSONRPCRequest } from './jsonrpc.js';
import { type NamedItem, nameSeparator, resolveName, unroutable } from './names.js';
import {
  acceptsBoth,
  cancelled,
  drain,
  isAnswerTo,
  jsonAnswer,
  knownVersion,
  readJson,
  streamAnswer,
  UnexpectedAnswer,
} from './routed-answers.js';
import {
  answerForAgent,
  type Call,
  cancelUpstream,
  type RoutedCallsDeps,
  sendOnCall,
} from './routed-call.js';
import { relayStream } from './routed-stream.js';
import type { GatewaySession } from './sessions.js';
import { sseMessage } from './sse.js';
import { refusalOf, UpstreamRefusal, upstreamTarget } from './upstream.js';
import { stepUpScopes, type UserActionReason } from './user-action.js';

export type { RoutedCallsDeps } from './routed-call.js';

/** The methods routed here; the param that carries the prefixed name. */
const routed: ReadonlyMap<string, 'name' | 'uri'> = new Map([
  ['tools/call', 'name'],
  ['prompts/get', 'name'],
  ['resources/read', 'uri'],
]);

export class RoutedCalls {
  readonly #d: RoutedCallsDeps;
  /** Our ids upstream: unique on this instance (the upstream session is shared by the user's agents). */
  readonly #idPrefix = `nunq-${randomBytes(6).toString('base64url')}-`;
  #next = 0;

  constructor(deps: RoutedCallsDeps) {
    this.#d = deps;
  }

  /** The answer to `request`, or undefined when it is not one of the routed calls the SDK server should see. */
  async answer(
    session: GatewaySession & { groups: readonly string[] },
    request: JSONRPCRequest,
    headers: Record<string, string | string[] | undefined>,
  ): Promise<GatewayAnswer | undefined> {
    const field = routed.get(request.method);
    const prefixed = request.params?.[field ?? 'name'];
    if (
      field === undefined ||
      typeof prefixed !== 'string' ||
      !acceptsBoth(headers.accept) ||
      !knownVersion(headers['mcp-protocol-version'])
    ) {
      return undefined;
    }
    const named = await resolveName(this.#d.integrations, session, prefixed);
    if (named === undefined || 'disabled' in named) {
      return jsonAnswer(session, errorResponse(request.id, unroutable(prefixed, named)));
    }
    const running = this.#d.calls.start(session.id, request.id);
    // A server may also send its requests on its own stream (the SDK client's GET stream): they
    // come to this call while it is the only one on that client, and then the agent is
    // answered with an event stream at once, which the call's answer joins when it comes.
    let sink: PassThrough | undefined;
    let openEarly!: (answer: GatewayAnswer) => void;
    const early = new Promise<GatewayAnswer>((resolve) => {
      openEarly = resolve;
    });
    const toAgent: ToAgent = async (message) => {
      if (sink === undefined) {
        sink = new PassThrough();
        openEarly(streamAnswer(session, sink));
      }
      if (!sink.writableEnded && !sink.destroyed) sink.write(sseMessage(message));
    };
    const untrack = this.#d.clients.track(session.userId, named.integration.id, {
      capabilities: session.hello.capabilities,
      sendRequest: (message, schema) =>
        this.#d.calls.ask(toAgent, request.id, message, schema, running.signal),
    });
    const done = () => {
      untrack();
      running.done();
    };
    const work = this.#call(session, request, named, field, running);
    const first = await Promise.race([
      work.then(
        (answer) => ({ answer }),
        (error: unknown) => ({ error }),
      ),
      early.then((stream) => ({ stream })),
    ]);
    if ('error' in first) {
      done();
      throw first.error;
    }
    if ('answer' in first) {
      // A relayed request that lost the race to the answer has nowhere to go now.
      sink?.end();
      if (first.answer.body instanceof PassThrough) {
        sink = first.answer.body;
        first.answer.body.once('close', done);
      } else done();
      return first.answer;
    }
    // The agent already has an event stream: the call's answer goes on it.
    const stream = sink!;
    void work.then(
      (answer) => {
        if (typeof answer.body === 'string') {
          stream.end(`event: message\ndata: ${answer.body}\n\n`);
          done();
        } else if (answer.body instanceof PassThrough) {
          const body = answer.body;
          body.once('close', done);
          stream.once('close', () => body.destroy());
          body.pipe(stream);
        } else {
          stream.end();
          done();
        }
      },
      () => {
        stream.end();
        done();
      },
    );
    return first.stream;
  }

  async #call(
    session: GatewaySession,
    request: JSONRPCRequest,
    { integration, name }: NamedItem,
    field: 'name' | 'uri',
    running: RunningCall,
  ): Promise<GatewayAnswer> {
    const act = async (reason: UserActionReason) => {
      const [answer] = await this.#d.actions.answer(session, integration, reason, [request]);
      return jsonAnswer(session, answer);
    };
    const url = integration.settings.url!;
    const target = upstreamTarget(url);
    for (let attempt = 1; ; attempt++) {
      const row = await this.#d.connections.find(session.userId, integration.id);
      if (row === undefined || row.status !== 'active') {
        return act({ kind: row === undefined ? 'not_connected' : 'needs_reauth' });
      }
      let call: Call | undefined;
      try {
        const client = await this.#d.clients.get(row, url);
        const transport = client.transport as StreamableHTTPClientTransport | undefined;
        const sessionHeaders: Record<string, string> = {};
        if (transport?.sessionId !== undefined) sessionHeaders[sessionHeader] = transport.sessionId;
        if (transport?.protocolVersion !== undefined) {
          sessionHeaders['mcp-protocol-version'] = transport.protocolVersion;
        }
        call = {
          session,
          request,
          integration,
          prefix: `${integration.id}${nameSeparator}`,
          row,
          target,
          sessionHeaders,
          upstreamId: `${this.#idPrefix}${++this.#next}`,
          running,
          get signal() {
            return running.signal;
          },
        };
        const body = JSON.stringify({
          jsonrpc: '2.0',
          id: call.upstreamId,
          method: request.method,
          params: { ...request.params, [field]: name },
        });
        const answer = await this.#untilCancelled(call, sendOnCall(this.#d, call, Buffer.from(body)), drain);
        if (answer === 'cancelled') return jsonAnswer(session, errorResponse(request.id, cancelled));
        // The server forgot the session (it restarted): once more with a new one.
        if (answer.statusCode === 404 && sessionHeaders[sessionHeader] !== undefined && attempt === 1) {
          answer.body?.resume();
          this.#d.clients.evict(row.user_id, integration.id);
          continue;
        }
        const refusal = await refusalOf(answer);
        if (refusal !== undefined) throw refusal;
        if (answer.statusCode === 200 && answer.body !== undefined) {
          if (isEventStream(answer.headers['content-type'])) return relayStream(this.#d, call, answer.body);
          // The head has come: the rest of a JSON answer is read without watching for a cancellation.
          const message = await readJson(answer.body, answer.headers['content-length']);
          if (isAnswerTo(message, call.upstreamId)) return jsonAnswer(session, answerForAgent(call, message));
        } else {
          const message =
            answer.body === undefined
              ? undefined
              : await readJson(answer.body, answer.headers['content-length']);
          // The server's own error answer (an HTTP 4xx carrying it) is passed on as it is.
          if (isJSONRPCErrorResponse(message) && message.id === call.upstreamId) {
            return jsonAnswer(session, answerForAgent(call, message));
          }
        }
        throw new UnexpectedAnswer(answer.statusCode);
      } catch (error) {
        if (error instanceof ConnectionNeedsReauthError) return act({ kind: 'needs_reauth' });
        if (error instanceof UpstreamRefusal) {
          if (error.kind === 'unauthorized') this.#d.clients.evict(row.user_id, integration.id);
          return act(
            error.kind === 'unauthorized'
              ? { kind: 'needs_reauth' }
              : { kind: 'insufficient_scope', scopes: stepUpScopes(grantedScopes(row), error.scopes) },
          );
        }
        // A client that could not open its session is not kept; an open one stays usable.
        if (call === undefined) this.#d.clients.evict(row.user_id, integration.id);
        this.#d.logger.warn(
          { integration: integration.id, reason: reasonOf(error) },
          'mcp gateway: upstream call failed',
        );
        return jsonAnswer(session, errorResponse(request.id, unreachable(integration, error)));
      }
    }
  }

  /** `work`, unless the agent cancels the call first: then the server is told, and a late answer is drained. */
  async #untilCancelled<T>(call: Call, work: Promise<T>, late: (value: T) => void): Promise<T | 'cancelled'> {
    if (call.running.cancelled) {
      void work.then(late, () => {});
      cancelUpstream(this.#d, call);
      return 'cancelled';
    }
    let stop: (() => void) | undefined;
    const aborted = new Promise<'cancelled'>((resolve) => {
      stop = call.running.onCancel(() => resolve('cancelled'));
    });
    try {
      const outcome = await Promise.race([work, aborted]);
      if (outcome === 'cancelled') {
        void work.then(late, () => {});
        cancelUpstream(this.#d, call);
      }
      return outcome;
    } finally {
      stop!();
    }
  }
}
