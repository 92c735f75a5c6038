/**
 * MCP SDK clients for the aggregate endpoint, one per user and integration, cached in memory
 * (bounded). Each talks to its server with the user's token, injected by its fetch: fetched
 * from the token service per request, refreshed by force and sent once more after a 401; a 403
 * `insufficient_scope` and a final 401 become an `UpstreamRefusal` the caller turns into a
 * Connect link. A client is dropped when its connection is replaced, or when its server
 * refused it or forgot its session; the next call opens a new one. Nothing here is needed by
 * another instance.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
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

export class UpstreamClients {
  readonly #d: UpstreamClientsDeps;
  readonly #entries = new Map<string, Entry>();
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
    const client = new Client({ name: 'nunq-connect', version: '1.0.0' }, { capabilities: {} });
    await client.connect(transport);
    return client;
  }

  /** The client's fetch: the user's token on every request, one refresh and retry after a 401. */
  async #fetch(
    userId: string,
    integrationId: string,
    input: string | URL,
    init: RequestInit = {},
  ): Promise<Response> {
    // The aggregate does not relay the servers' own streams: "no stream here" (405), as the spec allows.
    if ((init.method ?? 'GET').toUpperCase() === 'GET') return new Response(null, { status: 405 });
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
    return this.#d.fetch(input, { ...init, headers });
  }
}

function keyOf(userId: string, integrationId: string): string {
  return `${userId}\u0000${integrationId}`;
}
