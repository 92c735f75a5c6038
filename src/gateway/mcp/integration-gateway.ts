/**
 * `/mcp/:integrationId`: one MCP server, as if the client talked to it directly. The client
 * holds our session id; every request is forwarded at the HTTP level with the upstream session
 * id and the user's token in place of ours, so requests, notifications, server-to-client
 * requests (elicitation, sampling, roots), SSE streams, progress, cancellation and tool results
 * pass through untouched. `initialize` always succeeds for a signed-in user: when the server
 * cannot be reached with the user's token yet, it is answered here, and the upstream session is
 * opened on the first request after the user connects. No Fastify here: the route adapts.
 * @see MCP 2025-11-25, Basic / Transports §Streamable HTTP
 */
import type { Readable } from 'node:stream';
import type { InitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { ConnectionNeedsReauthError } from '../../connections/errors.js';
import type { Logger } from '../../observability/logger.js';
import type { IntegrationRecord } from '../../store/repos/catalog.js';
import type { ConnectionRow } from '../../store/types.js';
import type { ForwardedResponse } from '../forwarder.js';
import type { UpstreamTarget } from '../target.js';
import {
  dropped,
  type GatewayAnswer,
  grantedScopes,
  isEventStream,
  isInitializedNotification,
  isJson,
  json,
  localInitializeResult,
  reasonOf,
  rpcAnswer,
  sessionHeader,
  unreachable,
  withSession,
} from './answers.js';
import type { ConnectionLookup } from './connection-lookup.js';
import {
  BodyRefusal,
  errorResponse,
  isInitialize,
  type JSONRPCRequest,
  type PostedMessages,
  parseMessages,
  requestsIn,
  resultResponse,
} from './jsonrpc.js';
import {
  acceptsUrlElicitation,
  type ClientHello,
  type GatewaySession,
  type GatewaySessions,
} from './sessions.js';
import { relayAnswers, SseRelay } from './sse.js';
import type { StreamWatcher } from './streams.js';
import {
  openUpstreamSession,
  refusalOf,
  sendUpstream,
  type UpstreamDeps,
  UpstreamRefusal,
  upstreamHeaders,
  upstreamTarget,
} from './upstream.js';
import { stepUpScopes, type UserActionReason, type UserActions } from './user-action.js';

export type { GatewayAnswer };

/** Answers up to this size (with a Content-Length) are read whole before they are sent on. */
const maxBufferedBytes = 256 * 1024;

/** A body read whole: undici's own reader when it has one. */
async function bytesOf(body: Readable): Promise<Buffer> {
  const own = body as Readable & { arrayBuffer?: () => Promise<ArrayBuffer> };
  if (typeof own.arrayBuffer === 'function') return Buffer.from(await own.arrayBuffer());
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export interface IntegrationGatewayDeps extends UpstreamDeps {
  sessions: GatewaySessions;
  connections: ConnectionLookup;
  actions: UserActions;
  watcher: StreamWatcher;
  logger: Logger;
}

/** A request to the gateway, as the route read it. */
export interface GatewayRequest {
  userId: string;
  integration: IntegrationRecord;
  headers: Record<string, string | string[] | undefined>;
  body?: Buffer;
}

export class IntegrationGateway {
  readonly #d: IntegrationGatewayDeps;
  /** Upstream sessions being opened, by gateway session (and the upstream id they replace). */
  readonly #opening = new Map<string, Promise<GatewaySession>>();
  constructor(deps: IntegrationGatewayDeps) {
    this.#d = deps;
  }

  /** POST: JSON-RPC messages from the client. */
  async post(req: GatewayRequest): Promise<GatewayAnswer> {
    if (!isJson(req.headers['content-type'])) {
      return rpcAnswer(
        415,
        errorResponse(null, { code: -32000, message: 'Unsupported Media Type: send application/json' }),
      );
    }
    let posted: PostedMessages;
    try {
      posted = parseMessages(req.body ?? Buffer.alloc(0));
    } catch (error) {
      if (error instanceof BodyRefusal) return rpcAnswer(400, errorResponse(null, error.rpc));
      throw error;
    }
    const init = posted.messages.find(isInitialize);
    if (init !== undefined) return this.#initialize(req, init);
    const found = await this.#session(req);
    if ('status' in found) return found;
    let session = found;
    const requests = requestsIn(posted.messages);
    const integration = req.integration;
    const row = await this.#d.connections.find(req.userId, integration.id);
    if (row === undefined || row.status === 'needs_reauth') {
      return this.#mustAct(
        session,
        integration,
        { kind: row === undefined ? 'not_connected' : 'needs_reauth' },
        requests,
        posted,
      );
    }
    // The client's `initialized` after an initialize answered here: replayed when the upstream session opens.
    if (session.upstreamSessionId === null && posted.messages.every(isInitializedNotification)) {
      return { status: 202, headers: {} };
    }
    const target = upstreamTarget(integration.settings.url!);
    try {
      if (session.upstreamSessionId === null) session = await this.#openUpstream(session, row, target, null);
      let answer = await this.#send(session, row, target, 'POST', req.headers, req.body);
      // The server forgot its session (it restarted): open a new one for this client, once.
      if (
        answer.statusCode === 404 &&
        session.upstreamSessionId !== '' &&
        session.upstreamSessionId !== null
      ) {
        answer.body?.resume();
        session = await this.#openUpstream(session, row, target, session.upstreamSessionId);
        answer = await this.#send(session, row, target, 'POST', req.headers, req.body);
      }
      const refusal = await refusalOf(answer);
      if (refusal !== undefined) throw refusal;
      return await this.#relay(session, integration, answer, requests);
    } catch (error) {
      return this.#failure(error, session, integration, row, requests, posted);
    }
  }

  /** GET: the client's stream for server-initiated messages. */
  async get(req: GatewayRequest): Promise<GatewayAnswer> {
    const accept = String(req.headers.accept ?? '');
    if (!accept.includes('text/event-stream')) {
      return rpcAnswer(
        406,
        errorResponse(null, { code: -32000, message: 'Not Acceptable: accept text/event-stream' }),
      );
    }
    const found = await this.#session(req);
    if ('status' in found) return found;
    let session = found;
    const row = await this.#d.connections.find(req.userId, req.integration.id);
    if (row?.status === 'active') {
      const target = upstreamTarget(req.integration.settings.url!);
      try {
        if (session.upstreamSessionId === null)
          session = await this.#openUpstream(session, row, target, null);
        const answer = await this.#send(session, row, target, 'GET', req.headers);
        if (answer.statusCode === 200 && isEventStream(answer.headers['content-type'])) {
          const relay = new SseRelay();
          void relay.relay(answer.body as Readable).then(() => relay.end());
          await this.#follow(session, relay);
          return { status: 200, headers: withSession(answer.headers, session), body: relay.body };
        }
        answer.body?.resume();
        // No stream upstream (405), or none for us now: our own stream still carries our notifications.
      } catch (error) {
        this.#d.logger.info(
          { integration: req.integration.id, reason: reasonOf(error) },
          'mcp gateway: upstream GET stream refused',
        );
      }
    }
    const relay = new SseRelay();
    // Once the user has connected, this stream ends after saying so: the client's reconnection
    // then gets the server's own stream.
    await this.#follow(session, relay, true);
    return {
      status: 200,
      headers: {
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache, no-transform',
        [sessionHeader]: session.id,
      },
      body: relay.body,
    };
  }

  /** DELETE: ends our session and the upstream one. */
  async delete(req: GatewayRequest): Promise<GatewayAnswer> {
    const found = await this.#session(req);
    if ('status' in found) return found;
    const session = found;
    if (session.upstreamSessionId !== null && session.upstreamSessionId !== '') {
      const row = await this.#d.connections.find(req.userId, req.integration.id);
      if (row?.status === 'active') {
        try {
          const answer = await this.#send(
            session,
            row,
            upstreamTarget(req.integration.settings.url!),
            'DELETE',
            req.headers,
          );
          answer.body?.resume();
        } catch (error) {
          this.#d.logger.info(
            { integration: req.integration.id, reason: reasonOf(error) },
            'mcp gateway: upstream session not ended',
          );
        }
      }
    }
    await this.#d.sessions.delete(session);
    this.#d.watcher.endSession(session.id);
    return { status: 200, headers: {} };
  }

  /** `initialize`: forwarded when the user's connection works, else answered here. */
  async #initialize(req: GatewayRequest, init: JSONRPCRequest & InitializeRequest): Promise<GatewayAnswer> {
    const params = init.params;
    const hello: ClientHello = {
      protocolVersion: params.protocolVersion,
      capabilities: (params.capabilities ?? {}) as Record<string, unknown>,
      clientInfo: (params.clientInfo ?? {}) as Record<string, unknown>,
    };
    const integration = req.integration;
    const row = await this.#d.connections.find(req.userId, integration.id);
    if (row?.status === 'active') {
      try {
        const headers = upstreamHeaders(req.headers, null);
        const answer = await sendUpstream(
          this.#d,
          row,
          upstreamTarget(integration.settings.url!),
          'POST',
          headers,
          req.body,
        );
        if (answer.statusCode === 200 && answer.body !== undefined) {
          const session = await this.#d.sessions.create(
            req.userId,
            integration.id,
            hello,
            answer.headers[sessionHeader] ?? '',
          );
          return await this.#relay(session, integration, answer, [init]);
        }
        answer.body?.resume();
        this.#d.logger.info(
          { integration: integration.id, status: answer.statusCode },
          'mcp gateway: initialize answered here',
        );
      } catch (error) {
        this.#d.logger.info(
          { integration: integration.id, reason: reasonOf(error) },
          'mcp gateway: initialize answered here',
        );
      }
    }
    const session = await this.#d.sessions.create(req.userId, integration.id, hello, null);
    return {
      status: 200,
      headers: { ...json, [sessionHeader]: session.id },
      body: JSON.stringify(
        resultResponse(init.id, localInitializeResult(integration, hello.protocolVersion)),
      ),
    };
  }

  /** Tells the watcher about an open GET stream, so our own notifications reach it. */
  async #follow(session: GatewaySession, relay: SseRelay, endOnCompletion = false): Promise<void> {
    await this.#d.watcher.add({
      sessionId: session.id,
      userId: session.userId,
      relay,
      elicitation: acceptsUrlElicitation(session),
      endOnCompletion,
    });
  }

  /** The session the request names, or the answer when it names none (400) or an unknown one (404). */
  async #session(req: GatewayRequest): Promise<GatewaySession | GatewayAnswer> {
    const id = req.headers[sessionHeader];
    if (typeof id !== 'string' || id === '') {
      return rpcAnswer(
        400,
        errorResponse(null, { code: -32000, message: 'Bad Request: Mcp-Session-Id header is required' }),
      );
    }
    const session = await this.#d.sessions.find(id, req.userId, req.integration.id);
    if (session === undefined) {
      return rpcAnswer(404, errorResponse(null, { code: -32001, message: 'Session not found' }));
    }
    return session;
  }

  /**
   * Opens the upstream session for `session` (replacing a forgotten one), once per session on
   * this instance however many requests ask at the same time; across instances the fenced
   * write picks one and the others use it.
   */
  #openUpstream(
    session: GatewaySession,
    row: ConnectionRow,
    target: UpstreamTarget,
    replacing: string | null,
  ): Promise<GatewaySession> {
    const key = `${session.id}\u0000${replacing ?? ''}`;
    let opening = this.#opening.get(key);
    if (opening === undefined) {
      opening = openUpstreamSession(this.#d, row, target, session.hello)
        .then((upstream) => this.#d.sessions.setUpstream(session, upstream, replacing))
        .finally(() => this.#opening.delete(key));
      this.#opening.set(key, opening);
    }
    return opening;
  }

  #send(
    session: GatewaySession,
    row: ConnectionRow,
    target: UpstreamTarget,
    method: string,
    headers: GatewayRequest['headers'],
    body?: Buffer,
  ): Promise<ForwardedResponse> {
    return sendUpstream(
      this.#d,
      row,
      target,
      method,
      upstreamHeaders(headers, session.upstreamSessionId, session.upstreamProtocolVersion),
      body,
    );
  }

  /**
   * Passes the upstream answer on with our session id. An SSE answer is relayed byte for byte;
   * if it breaks off before answering every request, each unanswered one gets an error naming
   * the integration (unless the server made the stream resumable: then the client resumes it).
   */
  async #relay(
    session: GatewaySession,
    integration: IntegrationRecord,
    answer: ForwardedResponse,
    requests: readonly JSONRPCRequest[],
  ): Promise<GatewayAnswer> {
    const headers = withSession(answer.headers, session);
    const sse = isEventStream(answer.headers['content-type']);
    if (answer.body !== undefined && !sse && Number(answer.headers['content-length']) <= maxBufferedBytes) {
      // A small answer of known length is read whole and sent in one write: piping it cost more
      // (an answer of the echo tool: about a tenth of a call's CPU). The bytes are the same.
      return { status: answer.statusCode, headers, body: await bytesOf(answer.body) };
    }
    if (answer.body === undefined || !sse || requests.length === 0) {
      return {
        status: answer.statusCode,
        headers,
        ...(answer.body === undefined ? {} : { body: answer.body }),
      };
    }
    const relay = relayAnswers(answer.body, requests, (unanswered) => {
      this.#d.logger.warn(
        { integration: integration.id, unanswered: unanswered.length },
        'mcp gateway: upstream stream ended before answering',
      );
      return unanswered.map((id) => errorResponse(id, dropped(integration)));
    });
    return { status: answer.statusCode, headers, body: relay.body };
  }

  async #mustAct(
    session: GatewaySession,
    integration: IntegrationRecord,
    reason: UserActionReason,
    requests: readonly JSONRPCRequest[],
    posted: PostedMessages,
  ): Promise<GatewayAnswer> {
    if (requests.length === 0) return { status: 202, headers: {} };
    const answers = await this.#d.actions.answer(session, integration, reason, requests);
    return { status: 200, headers: json, body: JSON.stringify(posted.batch ? answers : answers[0]) };
  }

  /** Turns a failure on the way upstream into what the client is told. */
  async #failure(
    error: unknown,
    session: GatewaySession,
    integration: IntegrationRecord,
    row: ConnectionRow,
    requests: readonly JSONRPCRequest[],
    posted: PostedMessages,
  ): Promise<GatewayAnswer> {
    if (error instanceof ConnectionNeedsReauthError) {
      return this.#mustAct(session, integration, { kind: 'needs_reauth' }, requests, posted);
    }
    if (error instanceof UpstreamRefusal) {
      const reason: UserActionReason =
        error.kind === 'unauthorized'
          ? { kind: 'needs_reauth' }
          : { kind: 'insufficient_scope', scopes: stepUpScopes(grantedScopes(row), error.scopes) };
      return this.#mustAct(session, integration, reason, requests, posted);
    }
    const rpc = unreachable(integration, error);
    this.#d.logger.warn(
      { integration: integration.id, reason: reasonOf(error) },
      'mcp gateway: upstream request failed',
    );
    if (requests.length === 0) return rpcAnswer(502, errorResponse(null, rpc));
    const answers = requests.map((r) => errorResponse(r.id, rpc));
    return { status: 200, headers: json, body: JSON.stringify(posted.batch ? answers : answers[0]) };
  }
}
