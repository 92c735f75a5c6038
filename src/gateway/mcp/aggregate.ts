/**
 * `/mcp`: one MCP server for the agent that aggregates every MCP integration the user has
 * connected. Tools, prompts and resources are named `<integrationId>__<name>` (names.ts). The hot
 * calls (`tools/call`, `prompts/get`, `resources/read`) are routed at the JSON-RPC level
 * (routed-calls.ts); the rest (`initialize`, the lists, batches, requests the SDK refuses) goes to
 * the MCP SDK's `Server` over its web-standard Streamable HTTP transport, stateless per request,
 * whose lists ask each server through an SDK client holding the user's token
 * (upstream-clients.ts). The session row carries what a request needs, so any instance serves
 * any session. Our GET stream carries `notifications/tools/list_changed` when one of the user's
 * connections is added, reconnected or removed, and elicitation completions.
 * @see MCP 2025-11-25, Server Features / Tools, Prompts, Resources
 */
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import {
  CallToolRequestSchema,
  ErrorCode,
  GetPromptRequestSchema,
  ListPromptsRequestSchema,
  ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListToolsRequestSchema,
  McpError,
  ReadResourceRequestSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/ajv';
import { mayAccess } from '../../connections/access.js';
import { ConnectionNeedsReauthError } from '../../connections/errors.js';
import type { Logger } from '../../observability/logger.js';
import type { IntegrationRecord } from '../../store/repos/catalog.js';
import type { ConnectionRow } from '../../store/types.js';
import { AgentCalls, type ToAgent } from './agent-calls.js';
import { type GatewayAnswer, grantedScopes, isJson, reasonOf, rpcAnswer, sessionHeader } from './answers.js';
import type { ConnectionLookup } from './connection-lookup.js';
import type { McpIntegrations } from './integrations.js';
import { BodyRefusal, errorResponse, isInitialize, isRequestMessage, parseMessages } from './jsonrpc.js';
import { nameSeparator, resolveName, unroutable } from './names.js';
import { RoutedCalls } from './routed-calls.js';
import { acceptsUrlElicitation, type GatewaySession, type GatewaySessions } from './sessions.js';
import { SseRelay } from './sse.js';
import type { StreamWatcher } from './streams.js';
import { type UpstreamDeps, UpstreamRefusal } from './upstream.js';
import type { CallRelay, UpstreamClients } from './upstream-clients.js';
import { stepUpScopes, type UserActionReason, type UserActions } from './user-action.js';

/** Compiled schemas are cached by the validator, so one instance serves every request. */
const sharedValidator = new AjvJsonSchemaValidator();

export interface AggregateDeps extends UpstreamDeps {
  sessions: GatewaySessions;
  connections: ConnectionLookup;
  integrations: McpIntegrations;
  clients: UpstreamClients;
  actions: UserActions;
  watcher: StreamWatcher;
  logger: Logger;
}

export interface AggregateRequest {
  userId: string;
  /** The caller's groups: servers limited to other groups are left out, as if absent. */
  groups?: readonly string[];
  headers: Record<string, string | string[] | undefined>;
  body?: Buffer;
}

/** A JSON-RPC error a handler throws: the SDK's Server sends its code, message and data as they are. */
class RpcFailure extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly data?: unknown,
  ) {
    super(message);
  }
}

type Connected = { integration: IntegrationRecord; row: ConnectionRow };
/** A session as one request acts in it: with the caller's groups (they come with each request's JWT). */
type Caller = GatewaySession & { groups: readonly string[] };

export class AggregateGateway {
  readonly #d: AggregateDeps;
  /** Calls in flight here: cancellations and relayed requests find them. */
  readonly #calls = new AgentCalls();
  /** The hot calls, answered without an SDK server. */
  readonly #routed: RoutedCalls;
  constructor(deps: AggregateDeps) {
    this.#d = deps;
    this.#routed = new RoutedCalls({ ...deps, calls: this.#calls });
  }

  async post(req: AggregateRequest): Promise<GatewayAnswer> {
    if (!isJson(req.headers['content-type'])) {
      return rpcAnswer(
        415,
        errorResponse(null, { code: -32000, message: 'Unsupported Media Type: send application/json' }),
      );
    }
    const body = req.body ?? Buffer.alloc(0);
    let messages: ReturnType<typeof parseMessages>;
    try {
      messages = parseMessages(body);
    } catch (error) {
      if (error instanceof BodyRefusal) return rpcAnswer(400, errorResponse(null, error.rpc));
      throw error;
    }
    const init = messages.messages.find(isInitialize);
    let session: GatewaySession | undefined;
    if (init !== undefined) {
      session = await this.#d.sessions.create(
        req.userId,
        null,
        {
          protocolVersion: init.params.protocolVersion,
          capabilities: (init.params.capabilities ?? {}) as Record<string, unknown>,
          clientInfo: (init.params.clientInfo ?? {}) as Record<string, unknown>,
        },
        null,
      );
    } else {
      const found = await this.#session(req);
      if ('status' in found) return found;
      session = found;
    }
    // Cancellations and answers to relayed requests are for calls in flight, not for a new server.
    const rest = this.#calls.take(session.id, messages.messages);
    if (rest.length === 0) return { status: 202, headers: { [sessionHeader]: session.id } };
    const only = rest[0]!;
    if (!messages.batch && rest.length === 1 && isRequestMessage(only)) {
      const routed = await this.#routed.answer({ ...session, groups: req.groups ?? [] }, only, req.headers);
      if (routed !== undefined) return routed;
    }
    const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    const server = this.#server({ ...session, groups: req.groups ?? [] }, (message, relatedRequestId) =>
      transport.send(message, { relatedRequestId }),
    );
    await server.connect(transport);
    const close = () => {
      void transport.close().catch(() => {});
      void server.close().catch(() => {});
    };
    const headers = new Headers({ 'content-type': 'application/json' });
    for (const name of ['accept', 'mcp-protocol-version']) {
      const value = req.headers[name];
      if (typeof value === 'string') headers.set(name, value);
    }
    const response = await transport.handleRequest(
      new Request('http://gateway.invalid/mcp', { method: 'POST', headers }),
      {
        parsedBody: messages.batch ? rest : rest[0],
      },
    );
    const out: Record<string, string> = {};
    response.headers.forEach((value, name) => {
      if (name !== 'connection') out[name] = value;
    });
    out[sessionHeader] = session.id;
    if (response.body === null) {
      close();
      return { status: response.status, headers: out };
    }
    const stream = Readable.fromWeb(response.body as WebReadableStream<Uint8Array>);
    stream.once('close', close);
    return { status: response.status, headers: out, body: stream };
  }

  /** GET: our stream of notifications for the session. */
  async get(req: AggregateRequest): Promise<GatewayAnswer> {
    if (!String(req.headers.accept ?? '').includes('text/event-stream')) {
      return rpcAnswer(
        406,
        errorResponse(null, { code: -32000, message: 'Not Acceptable: accept text/event-stream' }),
      );
    }
    const found = await this.#session(req);
    if ('status' in found) return found;
    const relay = new SseRelay();
    const mcp = new Set(
      (await this.#d.integrations.enabled()).filter((i) => mayAccess(i, req.groups)).map((i) => i.id),
    );
    await this.#d.watcher.add({
      sessionId: found.id,
      userId: found.userId,
      relay,
      elicitation: acceptsUrlElicitation(found),
      followConnections: (integrationId) => {
        this.#d.clients.evict(found.userId, integrationId);
        return mcp.has(integrationId);
      },
    });
    return {
      status: 200,
      headers: {
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache, no-transform',
        [sessionHeader]: found.id,
      },
      body: relay.body,
    };
  }

  async delete(req: AggregateRequest): Promise<GatewayAnswer> {
    const found = await this.#session(req);
    if ('status' in found) return found;
    await this.#d.sessions.delete(found);
    this.#d.watcher.endSession(found.id);
    return { status: 200, headers: {} };
  }

  async #session(req: AggregateRequest): Promise<GatewaySession | GatewayAnswer> {
    const id = req.headers[sessionHeader];
    if (typeof id !== 'string' || id === '') {
      return rpcAnswer(
        400,
        errorResponse(null, { code: -32000, message: 'Bad Request: Mcp-Session-Id header is required' }),
      );
    }
    const session = await this.#d.sessions.find(id, req.userId, null);
    return session ?? rpcAnswer(404, errorResponse(null, { code: -32001, message: 'Session not found' }));
  }

  /** The SDK server for one request of `session`. */
  #server(session: Caller, toAgent: ToAgent): Server {
    const server = new Server(
      { name: 'nunq-connect', title: 'nunq-connect MCP gateway', version: '1.0.0' },
      {
        capabilities: {
          tools: { listChanged: true },
          prompts: { listChanged: true },
          resources: { listChanged: true },
        },
        instructions: `Tools, prompts and resources of your connected MCP servers, named <integration>${nameSeparator}<name>.`,
        // One validator for every request's server: building Ajv per request cost ~10 % of a call.
        jsonSchemaValidator: sharedValidator,
      },
    );
    server.setRequestHandler(ListToolsRequestSchema, async () => ({
      tools: await this.#collect(session, async (client) => {
        const tools = [];
        let cursor: string | undefined;
        do {
          const page = await client.listTools(cursor === undefined ? {} : { cursor });
          tools.push(...page.tools);
          cursor = page.nextCursor;
        } while (cursor !== undefined);
        return tools;
      }),
    }));
    server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
      const progressToken = request.params._meta?.progressToken;
      const running = this.#calls.start(session.id, extra.requestId);
      const signal = AbortSignal.any([extra.signal, running.signal]);
      return this.#route(
        session,
        request.params.name,
        'tools/call',
        request.params,
        (client, name) =>
          client.callTool({ ...request.params, name }, undefined, {
            signal,
            ...(progressToken === undefined
              ? {}
              : {
                  resetTimeoutOnProgress: true,
                  onprogress: (p) => {
                    void extra.sendNotification({
                      method: 'notifications/progress',
                      params: { ...p, progressToken },
                    });
                  },
                }),
          }),
        {
          sendRequest: (message, schema) =>
            this.#calls.ask(toAgent, extra.requestId, message, schema, signal),
          capabilities: session.hello.capabilities,
        },
      ).finally(running.done);
    });
    server.setRequestHandler(ListPromptsRequestSchema, async () => ({
      prompts: await this.#collect(session, async (client) =>
        client.getServerCapabilities()?.prompts === undefined ? [] : (await client.listPrompts()).prompts,
      ),
    }));
    server.setRequestHandler(GetPromptRequestSchema, async (request, extra) =>
      this.#route(session, request.params.name, 'prompts/get', request.params, (client, name) =>
        client.getPrompt({ ...request.params, name }, { signal: extra.signal }),
      ),
    );
    server.setRequestHandler(ListResourcesRequestSchema, async () => ({
      resources: (
        await this.#collect(session, async (client) =>
          client.getServerCapabilities()?.resources === undefined
            ? []
            : (
                await client.listResources()
              ).resources,
        )
      ).map((r) => ({
        ...r,
        uri: `${r.name.slice(0, r.name.indexOf(nameSeparator))}${nameSeparator}${r.uri}`,
      })),
    }));
    server.setRequestHandler(ListResourceTemplatesRequestSchema, async () => ({
      resourceTemplates: (
        await this.#collect(session, async (client) =>
          client.getServerCapabilities()?.resources === undefined
            ? []
            : (
                await client.listResourceTemplates()
              ).resourceTemplates,
        )
      ).map((t) => ({
        ...t,
        uriTemplate: `${t.name.slice(0, t.name.indexOf(nameSeparator))}${nameSeparator}${t.uriTemplate}`,
      })),
    }));
    server.setRequestHandler(ReadResourceRequestSchema, async (request, extra) =>
      this.#route(session, request.params.uri, 'resources/read', request.params, async (client, uri) => {
        const result = await client.readResource({ ...request.params, uri }, { signal: extra.signal });
        const prefix = request.params.uri.slice(0, request.params.uri.length - uri.length);
        return { ...result, contents: result.contents.map((c) => ({ ...c, uri: `${prefix}${c.uri}` })) };
      }),
    );
    return server;
  }

  /** The user's connected, enabled MCP integrations. */
  async #connected(session: Caller): Promise<Connected[]> {
    const integrations = new Map(
      (await this.#d.integrations.enabled())
        .filter((i) => mayAccess(i, session.groups))
        .map((i) => [i.id, i]),
    );
    const rows = await this.#d.connections.listForUser(session.userId);
    return rows.flatMap((row) => {
      const integration = integrations.get(row.integration_id);
      return integration !== undefined && row.status === 'active' ? [{ integration, row }] : [];
    });
  }

  /** Items of every connected server, named `<integration>__<name>`; a server that fails is left out. */
  async #collect<T extends { name: string }>(
    session: Caller,
    list: (client: Client) => Promise<T[]>,
  ): Promise<T[]> {
    const connected = await this.#connected(session);
    const lists = await Promise.all(
      connected.map(async ({ integration, row }) => {
        try {
          const items = await list(await this.#d.clients.get(row, integration.settings.url!));
          return items.map((item) => ({ ...item, name: `${integration.id}${nameSeparator}${item.name}` }));
        } catch (error) {
          this.#d.clients.evict(row.user_id, integration.id);
          this.#d.logger.info(
            { integration: integration.id, reason: reasonOf(error) },
            'mcp gateway: server left out of a list',
          );
          return [];
        }
      }),
    );
    return lists.flat();
  }

  /** Sends a named request to its server; when the user must act, the answer that says how. */
  async #route<R>(
    session: Caller,
    prefixed: string,
    method: string,
    params: Record<string, unknown>,
    call: (client: Client, name: string) => Promise<R>,
    relay?: CallRelay,
  ): Promise<R> {
    const named = await resolveName(this.#d.integrations, session, prefixed);
    if (named === undefined || 'disabled' in named) {
      const refused = unroutable(prefixed, named);
      throw new RpcFailure(refused.code, refused.message, refused.data);
    }
    const { integration, name } = named;
    const act = (reason: UserActionReason) => this.#mustAct<R>(session, integration, reason, method, params);
    for (let attempt = 1; ; attempt++) {
      const row = await this.#d.connections.find(session.userId, integration.id);
      if (row === undefined || row.status !== 'active') {
        return act({ kind: row === undefined ? 'not_connected' : 'needs_reauth' });
      }
      try {
        const client = await this.#d.clients.get(row, integration.settings.url!);
        return await (relay === undefined
          ? call(client, name)
          : this.#d.clients.during(row, relay, () => call(client, name)));
      } catch (error) {
        if (error instanceof ConnectionNeedsReauthError) return act({ kind: 'needs_reauth' });
        if (error instanceof UpstreamRefusal) {
          return act(
            error.kind === 'unauthorized'
              ? { kind: 'needs_reauth' }
              : { kind: 'insufficient_scope', scopes: stepUpScopes(grantedScopes(row), error.scopes) },
          );
        }
        if (error instanceof McpError && !(error instanceof StreamableHTTPError)) {
          if (error.code === ErrorCode.ConnectionClosed) {
            throw new RpcFailure(
              ErrorCode.ConnectionClosed,
              `${integration.name} (${integration.id}) closed the stream before answering this request.`,
            );
          }
          // The server's own answer: passed on as it is.
          throw new RpcFailure(
            error.code,
            error.message.replace(`MCP error ${error.code}: `, ''),
            error.data,
          );
        }
        if ((error as { name?: unknown }).name === 'AbortError') {
          throw new RpcFailure(ErrorCode.InternalError, 'The request was cancelled.');
        }
        this.#d.clients.evict(session.userId, integration.id);
        // The server forgot the client's session (it restarted): once more with a new one.
        if (error instanceof StreamableHTTPError && error.code === 404 && attempt === 1) continue;
        this.#d.logger.warn(
          { integration: integration.id, reason: reasonOf(error) },
          'mcp gateway: upstream call failed',
        );
        throw new RpcFailure(
          ErrorCode.InternalError,
          `${integration.name} (${integration.id}) could not be asked.`,
        );
      }
    }
  }

  async #mustAct<R>(
    session: GatewaySession,
    integration: IntegrationRecord,
    reason: UserActionReason,
    method: string,
    params: Record<string, unknown>,
  ): Promise<R> {
    const [answer] = await this.#d.actions.answer(session, integration, reason, [
      { jsonrpc: '2.0', id: 0, method, params },
    ]);
    if (answer !== undefined && 'result' in answer) return answer.result as R;
    const error = answer?.error ?? { code: ErrorCode.InternalError, message: 'The user must act first.' };
    throw new RpcFailure(error.code, error.message, error.data);
  }
}
