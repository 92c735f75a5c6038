/**
 * The secrets scan of the end-to-end suite (contract §5: no response body, header, log line or page
 * ever contains an access, refresh or ID token, a client secret or an authorization code; the
 * database holds them only sealed). Secrets are collected from the real flow, never invented: the
 * tokens from the provider's real token responses (a recording wrapper around the real outbound
 * fetch), the codes from the URLs the browser really requested, the verifier from the real token
 * request. Then every place is searched for every one of them.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import type { RouteRegistrar } from '../../src/http/app.js';
import type { OutboundFetch } from '../../src/oauth/outbound.js';
import type { Store } from '../../src/store/database.js';
import type { NetworkRecord } from './browser.js';
import type { TestDatabase } from './databases.js';

export type SecretKind =
  | 'client_secret'
  | 'authorization_code'
  | 'access_token'
  | 'refresh_token'
  | 'id_token'
  | 'code_verifier';

export interface Secret {
  kind: SecretKind;
  value: string;
}

/** A place to search: a name for the report and its text. */
export interface Haystack {
  where: string;
  text: string;
}

/** One secret found somewhere. The report names the secret by kind and prefix only. */
export interface Hit {
  kind: SecretKind;
  secret: string;
  where: string;
  at: number;
}

const tokenFields = ['access_token', 'refresh_token', 'id_token'] as const;

/** The secrets one flow produced, deduplicated, each with its kind. */
export class SecretsCollector {
  readonly #byValue = new Map<string, SecretKind>();
  /** How many outbound responses carried at least one token (token-endpoint answers). */
  tokenResponses = 0;

  add(kind: SecretKind, value: string | null | undefined): void {
    if (typeof value !== 'string' || value.length === 0) return;
    if (!this.#byValue.has(value)) this.#byValue.set(value, kind);
  }

  list(): Secret[] {
    return [...this.#byValue].map(([value, kind]) => ({ kind, value }));
  }

  count(kind: SecretKind): number {
    return this.list().filter((s) => s.kind === kind).length;
  }

  values(kind: SecretKind): string[] {
    return this.list()
      .filter((s) => s.kind === kind)
      .map((s) => s.value);
  }

  /**
   * Wraps the real outbound fetch: each JSON response carrying tokens is cloned and its
   * `access_token`, `refresh_token`, `id_token` and `client_secret` recorded; each form-encoded request's
   * `code_verifier` too. Requests and responses pass through untouched.
   */
  recordingFetch(inner: OutboundFetch): OutboundFetch {
    return async (input, init) => {
      const verifier = formField(init?.body, 'code_verifier');
      if (verifier !== undefined) this.add('code_verifier', verifier);
      const response = await inner(input, init);
      if (/json/i.test(response.headers.get('content-type') ?? '')) {
        const copy = response.clone();
        try {
          const body = (await copy.json()) as Record<string, unknown>;
          if (tokenFields.some((f) => typeof body[f] === 'string')) this.tokenResponses += 1;
          for (const field of tokenFields) this.add(field, body[field] as string | undefined);
          // A dynamic registration's answer (RFC 7591 §3.2.1) carries the client's secret.
          this.add('client_secret', body.client_secret as string | undefined);
        } catch {
          // Not JSON after all: no tokens in it.
        }
      }
      return response;
    };
  }

  /** Records the `code` of every URL with `path` on `origin` (the callbacks the browser requested). */
  addCodesFromUrls(urls: readonly string[], origin: string, path: string): void {
    for (const href of urls) {
      const url = new URL(href);
      if (url.origin === origin && url.pathname === path)
        this.add('authorization_code', url.searchParams.get('code'));
    }
  }
}

function formField(body: unknown, name: string): string | undefined {
  if (body instanceof URLSearchParams) return body.get(name) ?? undefined;
  if (typeof body === 'string') return new URLSearchParams(body).get(name) ?? undefined;
  return undefined;
}

/**
 * The needles searched for one secret: the whole value and, so that a truncated or partial copy is
 * caught as well, its last 24 characters (a JWT's signature) and, for opaque values, its first 24.
 */
function needles(secret: Secret): string[] {
  const v = secret.value;
  if (v.length < 40) return [v];
  const isJwt = v.split('.').length === 3 && v.startsWith('eyJ');
  return [v, v.slice(-24), ...(isJwt ? [] : [v.slice(0, 24)])];
}

/** Every occurrence of every secret in every haystack. */
export function findSecrets(secrets: readonly Secret[], haystacks: readonly Haystack[]): Hit[] {
  const hits: Hit[] = [];
  for (const secret of secrets) {
    const forms = needles(secret);
    for (const { where, text } of haystacks) {
      const at = forms.map((n) => text.indexOf(n)).find((i) => i !== -1);
      if (at !== undefined)
        hits.push({ kind: secret.kind, secret: `${secret.value.slice(0, 6)}…`, where, at });
    }
  }
  return hits;
}

/** Headers as one searchable text block. */
export function headersText(headers: Record<string, unknown>): string {
  return Object.entries(headers)
    .map(([name, value]) => `${name}: ${Array.isArray(value) ? value.join('\n') : String(value)}`)
    .join('\n');
}

/** One response the service sent, seen from inside it just before it went out. */
export interface TappedResponse {
  method: string;
  /** The request path without its query (the callback's query holds a code). */
  path: string;
  status: number;
  headers: Record<string, unknown>;
  /** The payload when it was text or bytes; undefined for an empty body. */
  body?: string;
}

/**
 * A route registrar (for `serviceOptions.routes`) that observes every response the service sends,
 * redirects included (Chromium keeps no body for those). It changes nothing.
 */
export function tapServiceResponses(sink: TappedResponse[]): RouteRegistrar {
  return (app: FastifyInstance) => {
    app.addHook('onSend', async (request, reply, payload) => {
      const body =
        typeof payload === 'string'
          ? payload
          : Buffer.isBuffer(payload)
            ? payload.toString('latin1')
            : payload == null
              ? undefined
              : `[${typeof payload} payload]`;
      sink.push({
        method: request.method,
        path: request.url.split('?')[0] ?? '',
        status: reply.statusCode,
        headers: reply.getHeaders(),
        ...(body === undefined ? {} : { body }),
      });
      return payload;
    });
  };
}

/**
 * Everything the database holds, as text: the SQLite files byte for byte (after a checkpoint, so
 * the WAL is folded in) or every row of every PostgreSQL table in its text form.
 */
export async function rawDatabaseText(store: Store, database: TestDatabase): Promise<string> {
  if (database.file !== undefined) {
    await sql`pragma wal_checkpoint(TRUNCATE)`.execute(store.db);
    const dir = dirname(database.file);
    return readdirSync(dir)
      .map((f) => readFileSync(join(dir, f)).toString('latin1'))
      .join('\n');
  }
  const tables = await sql<{
    tablename: string;
  }>`select tablename from pg_tables where schemaname = 'public'`.execute(store.db);
  const parts: string[] = [];
  for (const { tablename } of tables.rows) {
    const rows = await sql<{ t: string }>`select t::text as t from ${sql.table(tablename)} t`.execute(
      store.db,
    );
    parts.push(`-- ${tablename}`, ...rows.rows.map((r) => r.t));
  }
  return parts.join('\n');
}

/**
 * Every place the service put something, as haystacks: what the browser got from the service
 * (headers and text bodies), the browser's own request URLs to the service other than the
 * callback (which carries the code by design), the server-sent events the pages received, what
 * the service sent as seen from inside it (redirect bodies included), every log line, the
 * caller's extra haystacks (rendered pages, API answers, earlier database snapshots) and the raw
 * database now.
 */
export async function serviceHaystacks(o: {
  serviceUrl: string;
  callbackPath: string;
  network: NetworkRecord;
  tapped: readonly TappedResponse[];
  logs: readonly string[];
  extra: readonly Haystack[];
  store: Store;
  database: TestDatabase;
}): Promise<Haystack[]> {
  const origin = new URL(o.serviceUrl).origin;
  return [
    ...o.network.from(origin).map((r) => ({
      where: `browser got ${r.status} ${new URL(r.url).pathname}`,
      text: `${headersText(r.headers)}\n${r.body ?? ''}`,
    })),
    ...o.network.requests
      .filter((u) => new URL(u).origin === origin && new URL(u).pathname !== o.callbackPath)
      .map((u) => ({ where: 'browser request URL to the service', text: u })),
    ...o.network.eventSourceMessages.map((m) => ({ where: `server-sent event ${m.event}`, text: m.data })),
    ...o.tapped.map((r) => ({
      where: `service sent ${r.status} ${r.method} ${r.path}`,
      text: `${headersText(r.headers)}\n${r.body ?? ''}`,
    })),
    ...o.logs.map((line, i) => ({ where: `log line ${i}`, text: line })),
    ...o.extra,
    { where: 'database at the end', text: await rawDatabaseText(o.store, o.database) },
  ];
}
