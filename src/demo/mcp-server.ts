import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { type AuthServerLog, createAuthServer } from './mcp-auth-server.js';
import { createBearerVerifier, isRefusal } from './mcp-bearer.js';
import {
  appendToLog,
  closeListener,
  hangUp,
  header,
  isRecord,
  listen,
  notFound,
  originOf,
  type ReceivedRequest,
  readBody,
  refuse,
  requestEntry,
  rpcError,
  sendJson,
  unavailable,
} from './mcp-http.js';
import {
  adminToolName,
  createToolsServer,
  hangUpToolName,
  type ToolEvents,
  type ToolsSession,
  toolsAdminScope,
  toolsReadScope,
} from './mcp-tools.js';
import {
  authServerMetadataPaths,
  MCP_PATH,
  normalizeIssuerPath,
  type PreRegisteredClient,
  type PreRegisteredClientOptions,
  preRegisteredClient,
  type ResourceMetadataLocation,
  resourceMetadataPaths,
} from './mcp-variants.js';

export type { ReceivedRequest } from './mcp-http.js';
export {
  adminToolName,
  bonusToolName,
  hangUpToolName,
  readmeUri,
  toolsAdminScope,
  toolsReadScope,
} from './mcp-tools.js';
export type {
  PreRegisteredClient,
  PreRegisteredClientOptions,
  ResourceMetadataLocation,
} from './mcp-variants.js';

export interface StartMcpServerOptions {
  /** Port of the MCP endpoint on 127.0.0.1 (0, the default, picks one). */
  port?: number;
  /** Port of the authorization server when it has its own origin (0, the default, picks one). */
  authServerPort?: number;
  /** Serve the authorization server on the MCP endpoint's origin (always so with `metadata: 'none'`). */
  sameOrigin?: boolean;
  /**
   * Protected-resource metadata: `path` (default) at `/.well-known/oauth-protected-resource/mcp`,
   * `root-only` at `/.well-known/oauth-protected-resource`, `both`, or `none` (2025-03-26 style:
   * the client finds the authorization server at the MCP server's origin).
   */
  metadata?: ResourceMetadataLocation;
  /**
   * Serve authorization-server metadata (default true). False: none anywhere, so a client must
   * fall back to the 2025-03-26 default endpoints `/authorize`, `/token`, `/register`.
   */
  authServerMetadata?: boolean;
  /** A path for the issuer (`/tenant1` → issuer `http://127.0.0.1:P/tenant1`). */
  issuerPath?: string;
  /**
   * Only OpenID Connect discovery, no RFC 8414 document: at `/.well-known/openid-configuration`,
   * or with `issuerPath` only path-appended (`/tenant1/.well-known/openid-configuration`).
   */
  oidcOnly?: boolean;
  /** RFC 7591 dynamic registration (default true). */
  registration?: boolean;
  /** A pre-registered client; its credentials come back as `client`. */
  client?: PreRegisteredClientOptions;
  /** Accept Client ID Metadata Documents (URL client_ids) and advertise it in the metadata. */
  cimd?: boolean;
  /**
   * The `resource` its protected-resource metadata names, when not its own URL (a server whose
   * metadata a client must refuse before any authorization request).
   */
  advertisedResource?: string;
  /** The authorization server disregards `resource`: every token's audience is `audience`. */
  ignoreResource?: boolean;
  /** 401s carry just `Bearer` (no `resource_metadata`, no `scope`); always so with `metadata: 'none'`. */
  bareChallenge?: boolean;
  /** `admin_op` without `tools:admin` answers HTTP 403 `insufficient_scope` (default true). */
  stepUp?: boolean;
  accessTokenTtlSeconds?: number;
  refreshTokenTtlSeconds?: number;
  /** `always` (default) or only when `offline_access` was granted. */
  refreshTokens?: 'always' | 'offline_access';
  /** Answer POSTs with JSON instead of an SSE stream (default false: SSE). */
  jsonResponse?: boolean;
  /** The server's name in `initialize` and its metadata (default `demo-tools`). */
  name?: string;
}

export interface McpServerLog extends AuthServerLog, ToolEvents {
  requests: ReceivedRequest[];
  /** Every bearer token presented to the MCP endpoint, valid or not, in order. */
  bearerTokens: string[];
}

export interface RunningMcpServer {
  /** The MCP endpoint, `http://127.0.0.1:PORT/mcp`: also the resource indicator (RFC 8707). */
  url: string;
  issuer: string;
  /** `aud` of the access tokens the endpoint accepts. */
  audience: string;
  /** Where the protected-resource metadata is (absent with `metadata: 'none'`). */
  resourceMetadataUrl?: string;
  /** The pre-registered client, when `client` was given. */
  client?: PreRegisteredClient;
  received: McpServerLog;
  /** Shows or hides the `bonus` tool on every session (sending `notifications/tools/list_changed`). */
  setBonusTool(enabled: boolean): void;
  /** Forgets every dynamically registered client (their next request: `invalid_client`). */
  dropRegistrations(): number;
  /** Answers the next `n` MCP requests that carry a valid token with 401 `invalid_token` anyway. */
  failNextWithUnauthorized(n: number): void;
  /** Live MCP sessions. */
  sessionCount(): number;
  close(): Promise<void>;
}

interface Session {
  transport: StreamableHTTPServerTransport;
  tools: ToolsSession;
  /** The `sub` the session was opened for: another user's token cannot use it. */
  sub: string;
}

const IGNORED_RESOURCE_AUDIENCE = 'urn:nunq:demo-tools';

/**
 * Starts an OAuth-protected MCP server on 127.0.0.1 (MCP SDK, Streamable HTTP, stateful sessions,
 * SSE) with its own authorization server (see mcp-auth-server.ts): the demo MCP integration and
 * the peer of every MCP test. Each option makes it really behave as one kind of server in the
 * field (where metadata lives, how it challenges, how it identifies clients).
 * @see MCP authorization (2025-11-25), RFC 9728, RFC 8414, RFC 7591, RFC 8707, RFC 6750
 */
export async function startMcpServer(options: StartMcpServerOptions = {}): Promise<RunningMcpServer> {
  const metadata = options.metadata ?? 'path';
  const issuerPath = normalizeIssuerPath(options.issuerPath);
  if (metadata === 'none' && issuerPath !== '') {
    throw new Error('metadata "none" puts the authorization server at the origin: no issuerPath');
  }
  const sameOrigin = options.sameOrigin === true || metadata === 'none';
  let handleMcp: (req: IncomingMessage, res: ServerResponse) => void = unavailable;
  let handleAuth: (req: IncomingMessage, res: ServerResponse) => void = unavailable;
  const mcpListener = await listen(options.port ?? 0, (req, res) => handleMcp(req, res));
  const authListener = sameOrigin
    ? undefined
    : await listen(options.authServerPort ?? 0, (req, res) => handleAuth(req, res)).catch(async (error) => {
        await closeListener(mcpListener);
        throw error;
      });

  const origin = originOf(mcpListener);
  const url = `${origin}${MCP_PATH}`;
  const issuer = `${authListener ? originOf(authListener) : origin}${issuerPath}`;
  const audience = options.ignoreResource ? IGNORED_RESOURCE_AUDIENCE : url;
  const prmPaths = resourceMetadataPaths(metadata);
  const resourceMetadataUrl = prmPaths[0] === undefined ? undefined : `${origin}${prmPaths[0]}`;
  const received: McpServerLog = {
    requests: [],
    bearerTokens: [],
    authorizationRequests: [],
    tokenRequests: [],
    registrations: [],
    cimdFetches: [],
    serverErrors: [],
    cancelledCalls: [],
  };
  const client = preRegisteredClient(options.client);

  const authServer = createAuthServer({
    issuer,
    resource: url,
    audience,
    ignoreResource: options.ignoreResource ?? false,
    scopes: [toolsReadScope, toolsAdminScope],
    accessTokenTtlSeconds: options.accessTokenTtlSeconds ?? 300,
    refreshTokenTtlSeconds: options.refreshTokenTtlSeconds ?? 14 * 24 * 3600,
    refreshTokens: options.refreshTokens ?? 'always',
    registration: options.registration ?? true,
    cimd: options.cimd ?? false,
    clients: client ? [client.metadata] : [],
    metadataPaths: authServerMetadataPaths(issuerPath, options),
    log: received,
  });
  const verifier = createBearerVerifier({
    issuer,
    audience,
    jwksUri: authServer.jwksUri,
    challenge: {
      // A 2025-03-26 server has nothing to name in its challenge.
      bare: (options.bareChallenge ?? false) || metadata === 'none',
      resourceMetadataUrl,
      scopes: [toolsReadScope],
    },
  });
  const resourceMetadata = {
    resource: options.advertisedResource ?? url,
    authorization_servers: [issuer],
    scopes_supported: [toolsReadScope, toolsAdminScope],
    bearer_methods_supported: ['header'],
    resource_name: options.name ?? 'demo-tools',
  };

  const sessions = new Map<string, Session>();
  let bonusTool = false;
  let forcedUnauthorized = 0;
  const stepUp = options.stepUp ?? true;

  const answerAuth = (req: IncomingMessage, res: ServerResponse): boolean => {
    const entry = requestEntry('auth', req, res, new URL(req.url ?? '/', origin).pathname);
    if (!authServer.handle(req, res)) return false;
    appendToLog(received.requests, entry);
    return true;
  };

  const answerMcp = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const entry = requestEntry('mcp', req, res, MCP_PATH);
    appendToLog(received.requests, entry);
    const authorization = req.headers.authorization;
    const presented = authorization === undefined ? undefined : /^Bearer (.+)$/i.exec(authorization)?.[1];
    if (presented !== undefined) appendToLog(received.bearerTokens, presented);
    const holder = await verifier.verify(authorization);
    if (isRefusal(holder)) return refuse(res, holder);
    if (forcedUnauthorized > 0) {
      forcedUnauthorized -= 1;
      return refuse(res, verifier.rejected('the access token was rejected (forced by the test switch)'));
    }

    let body: unknown;
    if (req.method === 'POST') {
      try {
        body = JSON.parse((await readBody(req)).toString('utf8'));
      } catch {
        return rpcError(res, 400, -32700, 'Parse error: the body is not JSON');
      }
      const messages = Array.isArray(body) ? body : [body];
      entry.rpcMethods = messages.map((m) => (isRecord(m) && typeof m.method === 'string' ? m.method : ''));
      if (stepUp && callsTool(messages, adminToolName) && !holder.scopes.includes(toolsAdminScope)) {
        return refuse(res, verifier.insufficientScope([toolsReadScope, toolsAdminScope]));
      }
      if (callsTool(messages, hangUpToolName)) return hangUp(res);
    }

    const sessionId = header(req, 'mcp-session-id');
    let session = sessionId === undefined ? undefined : sessions.get(sessionId);
    if (sessionId !== undefined && session?.sub !== holder.sub) {
      return rpcError(res, 404, -32001, 'Session not found');
    }
    if (session === undefined) {
      if (req.method !== 'POST' || !isInitializeRequest(body)) {
        return rpcError(res, 400, -32000, 'Bad Request: no valid session id');
      }
      session = await openSession(holder.sub);
    }
    const auth: AuthInfo = {
      token: holder.token,
      clientId: holder.clientId,
      scopes: holder.scopes,
      expiresAt: holder.expiresAt,
      extra: { sub: holder.sub },
    };
    await session.transport.handleRequest(Object.assign(req, { auth }), res, body);
  };

  const openSession = async (sub: string): Promise<Session> => {
    const tools = createToolsServer({
      name: options.name ?? 'demo-tools',
      bonusTool,
      stepUp,
      events: received,
    });
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      enableJsonResponse: options.jsonResponse ?? false,
      onsessioninitialized: (id) => {
        sessions.set(id, session);
      },
      onsessionclosed: (id) => {
        sessions.delete(id);
      },
    });
    const session: Session = { transport, tools, sub };
    transport.onclose = () => {
      if (transport.sessionId !== undefined) sessions.delete(transport.sessionId);
    };
    await tools.server.connect(transport);
    return session;
  };

  handleAuth = (req, res) => {
    if (!answerAuth(req, res)) notFound(res);
  };
  handleMcp = (req, res) => {
    const path = new URL(req.url ?? '/', origin).pathname;
    if (prmPaths.includes(path)) {
      appendToLog(received.requests, requestEntry('mcp', req, res, path));
      return sendJson(res, 200, resourceMetadata);
    }
    if (path === MCP_PATH) {
      answerMcp(req, res).catch((error: unknown) => {
        if (!res.headersSent) rpcError(res, 500, -32603, 'Internal error');
        else res.destroy(error instanceof Error ? error : undefined);
      });
      return;
    }
    if (sameOrigin && answerAuth(req, res)) return;
    appendToLog(received.requests, requestEntry('mcp', req, res, path));
    notFound(res);
  };

  return {
    url,
    issuer,
    audience,
    resourceMetadataUrl,
    ...(client ? { client: client.credentials } : {}),
    received,
    setBonusTool(enabled) {
      bonusTool = enabled;
      for (const { tools } of sessions.values()) {
        if (enabled) tools.bonus.enable();
        else tools.bonus.disable();
      }
    },
    dropRegistrations: () => authServer.dropRegistrations(),
    failNextWithUnauthorized(n) {
      forcedUnauthorized = n;
    },
    sessionCount: () => sessions.size,
    async close() {
      await Promise.allSettled([...sessions.values()].map(({ transport }) => transport.close()));
      sessions.clear();
      await Promise.all([closeListener(mcpListener), authListener ? closeListener(authListener) : undefined]);
    },
  };
}

function callsTool(messages: unknown[], name: string): boolean {
  return messages.some(
    (m) => isRecord(m) && m.method === 'tools/call' && isRecord(m.params) && m.params.name === name,
  );
}
