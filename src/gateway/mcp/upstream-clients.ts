/**
 * MCP SDK clients for the aggregate endpoint, one per user and integration, cached in memory
 * (bounded). Each talks to its server with the user's token, injected by its fetch: fetched
 * from the token service per request, refreshed by force and sent once more after a 401; a 403
 * `insufficient_scope` and a final 401 become an `UpstreamRefusal` the caller turns into a
 * Connect link. A client is dropped when its connection is replaced, or when its server
 * refused it or forgot its session; the next call opens a new one. A server's own requests
 * (elicitation, sampling) are relayed to the agent whose call is in flight on that client, when
 * exactly one is. Nothing here is needed by another instance.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  CreateMessageRequestSchema,
  CreateMessageResultSchema,
  ElicitRequestSchema,
  ElicitResultSchema,
  ErrorCode,
  McpError,
} from '@modelcontextprotocol/sdk/types.js';
import type { TokenService } from '../../connections/token-service.js';
import type { OutboundFetch } from '../../oauth/outbound.js';
import type { ConnectionRow } from '../../store/types.js';
import { insufficientScope } from './challenge.js';
import type { ConnectionLookup } from './connection-lookup.js';
import { UpstreamRefusal } from './upstream.js';

export interface UpstreamClientsDeps {
  fetch: OutboundFetch;
  tokens: TokenService;
  connections: ConnectionLookup;
  /** Clients kept at most (the oldest is closed first). */
  maxClients?: number;
}

interface Entry {
  connectionId: string;
  client: Promise<Client>;
}

/**
 * An agent's call in flight on a client: where a request the server sends during it (an
 * elicitation, a sampling request) is relayed, and what the agent declared it can answer.
 */
type RelaySchema = typeof ElicitResultSchema | typeof CreateMessageResultSchema;

export interface CallRelay {
  // A method signature: the SDK's generic `extra.sendRequest` fits it.
  sendRequest(
    request: { method: string; params?: Record<string, unknown> },
    schema: RelaySchema,
  ): Promise<unknown>;
  capabilities: Record<string, unknown>;
}

export class UpstreamClients {
  readonly #d: UpstreamClientsDeps;
  readonly #entries = new Map<string, Entry>();
  /** Agents' calls in flight, per client. */
  readonly #calls = new Map<string, Set<CallRelay>>();
  readonly #max: number;

  constructor(deps: UpstreamClientsDeps) {
    this.#d = deps;
    this.#max = deps.maxClients ?? 500;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** A connected client for the user's server (opening its session when there is none). */
  async get(row: ConnectionRow, url: string): Promise<Client> {
    const key = keyOf(row.user_id, row.integration_id);
    const hit = this.#entries.get(key);
    if (hit !== undefined && hit.connectionId === row.id) {
      // Most recently used last, so the oldest is evicted first.
      this.#entries.delete(key);
      this.#entries.set(key, hit);
      return hit.client;
    }
    if (hit !== undefined) this.evict(row.user_id, row.integration_id);
    while (this.#entries.size >= this.#max) {
      const oldest = this.#entries.keys().next().value as string;
      this.#close(oldest);
    }
    const client = this.#open(row.user_id, row.integration_id, url);
    this.#entries.set(key, { connectionId: row.id, client });
    client.catch(() => {
      if (this.#entries.get(key)?.client === client) this.#entries.delete(key);
    });
    return client;
  }

  /**
   * Runs `call` as an agent's call on the user's client: requests the server sends meanwhile are
   * relayed to the agent, when this is the only call in flight on that client (a server's
   * request does not say which call it belongs to; with several, it is refused, not guessed).
   */
  async during<R>(row: ConnectionRow, relay: CallRelay, call: () => Promise<R>): Promise<R> {
    const untrack = this.track(row.user_id, row.integration_id, relay);
    try {
      return await call();
    } finally {
      untrack();
    }
  }

  /** Registers an agent's call on the user's client (as `during` does) until the returned function is called. */
  track(userId: string, integrationId: string, relay: CallRelay): () => void {
    const key = keyOf(userId, integrationId);
    let calls = this.#calls.get(key);
    if (calls === undefined) {
      calls = new Set();
      this.#calls.set(key, calls);
    }
    calls.add(relay);
    return () => {
      calls.delete(relay);
      if (calls.size === 0 && this.#calls.get(key) === calls) this.#calls.delete(key);
    };
  }

  /** Drops (and closes) the client of a user's server. */
  evict(userId: string, integrationId: string): void {
    this.#close(keyOf(userId, integrationId));
  }

  closeAll(): void {
    for (const key of [...this.#entries.keys()]) this.#close(key);
  }

  #close(key: string): void {
    const entry = this.#entries.get(key);
    this.#entries.delete(key);
    entry?.client.then((c) => c.close()).catch(() => {});
  }

  async #open(userId: string, integrationId: string, url: string): Promise<Client> {
    const transport = new StreamableHTTPClientTransport(new URL(url), {
      fetch: (input, init) => this.#fetch(userId, integrationId, input, init),
    });
    const client = new Client(
      { name: 'nunq-connect', version: '1.0.0' },
      { capabilities: { elicitation: { form: {}, url: {} }, sampling: {} } },
    );
    const key = keyOf(userId, integrationId);
    client.setRequestHandler(ElicitRequestSchema, async (request) =>
      ElicitResultSchema.parse(await this.#relay(key, 'elicitation', request, ElicitResultSchema)),
    );
    client.setRequestHandler(CreateMessageRequestSchema, async (request) =>
      CreateMessageResultSchema.parse(await this.#relay(key, 'sampling', request, CreateMessageResultSchema)),
    );
    await client.connect(transport);
    return client;
  }

  /** Relays a server's request to the one agent call waiting on this client, or refuses it. */
  async #relay(
    key: string,
    capability: 'elicitation' | 'sampling',
    request: { method: string; params?: Record<string, unknown> },
    schema: RelaySchema,
  ): Promise<unknown> {
    const calls = this.#calls.get(key);
    if (calls === undefined || calls.size !== 1) {
      throw new McpError(
        ErrorCode.InvalidRequest,
        `${request.method} cannot be relayed: no single call of the agent is waiting`,
      );
    }
    const [call] = calls;
    const kind =
      request.method === 'elicitation/create'
        ? ((request.params?.mode as string | undefined) ?? 'form')
        : undefined;
    const declared = call!.capabilities[capability] as Record<string, unknown> | undefined;
    if (declared === undefined || (kind !== undefined && kind !== 'form' && declared[kind] === undefined)) {
      throw new McpError(ErrorCode.InvalidRequest, `the agent does not support ${request.method}`);
    }
    return call!.sendRequest(
      { method: request.method, ...(request.params === undefined ? {} : { params: request.params }) },
      schema,
    );
  }

  /** The client's fetch: the user's token on every request, one refresh and retry after a 401. */
  async #fetch(
    userId: string,
    integrationId: string,
    input: string | URL,
    init: RequestInit = {},
  ): Promise<Response> {
    const row = await this.#d.connections.find(userId, integrationId);
    if (row === undefined || row.status !== 'active') throw new UpstreamRefusal('unauthorized');
    let token = await this.#d.tokens.tokenFor(row);
    let response = await this.#send(input, init, token.authorization);
    if (response.status === 401) {
      const fresh = await this.#d.tokens.tokenFor(row, { force: true, rejectedToken: token.value });
      if (fresh.value !== token.value) {
        await response.body?.cancel();
        token = fresh;
        response = await this.#send(input, init, token.authorization);
      }
    }
    if (response.status === 401) {
      await response.body?.cancel();
      this.evict(userId, integrationId);
      throw new UpstreamRefusal('unauthorized');
    }
    if (response.status === 403) {
      const challenge = await insufficientScope(response.headers.get('www-authenticate') ?? undefined);
      if (challenge !== undefined) {
        await response.body?.cancel();
        throw new UpstreamRefusal('insufficient_scope', challenge.scopes);
      }
    }
    // The server's own stream (GET) may end whenever; the client reconnects it by itself.
    if ((init.method ?? 'GET').toUpperCase() !== 'POST') return response;
    return this.#watchForDrop(response, () => this.evict(userId, integrationId));
  }

  /**
   * An event stream that breaks off mid-way: the SDK client would wait for the missing answer
   * until its timeout, so the client is closed instead (its pending calls fail at once with
   * "connection closed") and the next call opens a new one.
   */
  #watchForDrop(response: Response, onDrop: () => void): Response {
    const type = response.headers.get('content-type') ?? '';
    if (response.body === null || !type.toLowerCase().startsWith('text/event-stream')) return response;
    const reader = response.body.getReader();
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        try {
          const { done, value } = await reader.read();
          if (done) controller.close();
          else controller.enqueue(value);
        } catch (error) {
          controller.error(error);
          onDrop();
        }
      },
      cancel: (reason) => reader.cancel(reason),
    });
    return new Response(body, {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
  }

  #send(input: string | URL, init: RequestInit, authorization: string): Promise<Response> {
    const headers = new Headers(init.headers);
    headers.set('authorization', authorization);
    // A tool may run for long without a word: the body is bounded in all, not per pause.
    return this.#d.fetch(input, { ...init, headers, bodyTimeoutMs: 10 * 60_000 });
  }
}

function keyOf(userId: string, integrationId: string): string {
  return `${userId}\u0000${integrationId}`;
}
