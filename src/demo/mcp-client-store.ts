// @ts-expect-error oidc-provider publishes no type declarations; its memory adapter is used as is.
import { createMemoryAdapter } from 'oidc-provider/lib/adapters/memory_adapter.js';

/** One fetch of a Client ID Metadata Document, as the MCP test server's log keeps it. */
export interface CimdFetch {
  url: string;
  /** Why the document was refused; absent when it was accepted. */
  problem?: string;
}

/** The adapter interface oidc-provider calls for every model (its `adapter` configuration). */
export interface ProviderAdapter {
  upsert(id: string, payload: object, expiresIn?: number): Promise<void>;
  find(id: string): Promise<object | undefined>;
  findByUid(uid: string): Promise<object | undefined>;
  findByUserCode(userCode: string): Promise<object | undefined>;
  consume(id: string): Promise<void>;
  destroy(id: string): Promise<void>;
  revokeByGrantId(grantId: string): Promise<void>;
}

export interface ClientStoreOptions {
  /** Resolve a `client_id` that is an http(s) URL through its Client ID Metadata Document. */
  cimd: boolean;
  onCimdFetch: (fetch: CimdFetch) => void;
  fetch?: typeof fetch;
}

const MAX_DOCUMENT_BYTES = 16 * 1024;
const FETCH_TIMEOUT_MS = 5000;
const SECRET_AUTH_METHODS = new Set(['client_secret_basic', 'client_secret_post', 'client_secret_jwt']);
const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

/**
 * oidc-provider's storage for one provider instance: its memory adapter (kept per instance, not
 * the module-wide default store) for every model, and for `Client` a store of dynamically
 * registered clients that tests can empty, plus Client ID Metadata Documents when `cimd` is on.
 *
 * Why CIMD is done here rather than with oidc-provider's own `features.clientIdMetadataDocument`:
 * that feature (9.13) accepts only `https:` client_ids and `https:` URIs inside the document, so
 * it cannot serve a client on loopback (`http://127.0.0.1:PORT/oauth/client-metadata.json`).
 * oidc-provider asks the Client adapter's `find(id)` for any client_id it does not know
 * statically, before its own CIMD step, so resolving the document there takes the same place.
 * Hand-rolled checks follow draft-ietf-oauth-client-id-metadata-document §3-§4: the URL has a
 * path, no fragment, no credentials; `http:` only on loopback; the document's `client_id` equals
 * the URL; no shared-secret auth method and no `client_secret`; a public client by default.
 */
export class ClientStore {
  readonly #registered = new Map<string, object>();
  readonly #options: ClientStoreOptions;
  readonly #memory: (model: string) => ProviderAdapter;

  constructor(options: ClientStoreOptions) {
    this.#options = options;
    this.#memory = createMemoryAdapter(0) as (model: string) => ProviderAdapter;
  }

  /** The `adapter` option for oidc-provider's configuration. */
  adapterFactory(): (model: string) => ProviderAdapter {
    return (model) => (model === 'Client' ? this.#clientAdapter() : this.#memory(model));
  }

  /** Forgets every dynamically registered client: their next request gets `invalid_client`. */
  dropRegistrations(): number {
    const count = this.#registered.size;
    this.#registered.clear();
    return count;
  }

  #clientAdapter(): ProviderAdapter {
    const registered = this.#registered;
    const none = async () => undefined;
    return {
      upsert: async (id, payload) => {
        registered.set(id, payload);
      },
      find: async (id) => registered.get(id) ?? (await this.#resolveDocument(id)),
      destroy: async (id) => {
        registered.delete(id);
      },
      findByUid: none,
      findByUserCode: none,
      consume: none,
      revokeByGrantId: none,
    };
  }

  async #resolveDocument(id: string): Promise<object | undefined> {
    if (!this.#options.cimd || !/^https?:\/\//i.test(id)) return undefined;
    try {
      const document = await this.#fetchDocument(id);
      this.#options.onCimdFetch({ url: id });
      return document;
    } catch (error) {
      this.#options.onCimdFetch({ url: id, problem: error instanceof Error ? error.message : String(error) });
      return undefined; // oidc-provider answers invalid_client
    }
  }

  async #fetchDocument(id: string): Promise<object> {
    const url = new URL(id);
    if (url.protocol === 'http:' && !LOOPBACK_HOSTS.has(url.hostname)) {
      throw new Error('an http: client_id must be on loopback');
    }
    if (url.pathname === '/' || id.includes('#') || url.username !== '' || url.password !== '') {
      throw new Error('the client_id URL needs a path and no fragment or credentials');
    }
    const response = await (this.#options.fetch ?? fetch)(url, {
      headers: { accept: 'application/json' },
      redirect: 'manual',
      signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
    });
    if (response.status !== 200) throw new Error(`the document answered HTTP ${response.status}`);
    const text = await response.text();
    if (text.length > MAX_DOCUMENT_BYTES) throw new Error('the document is too large');
    const document: unknown = JSON.parse(text);
    if (typeof document !== 'object' || document === null || Array.isArray(document)) {
      throw new Error('the document is not a JSON object');
    }
    const metadata = document as Record<string, unknown>;
    if (metadata.client_id !== id) throw new Error('the document names another client_id');
    if ('client_secret' in metadata || 'client_secret_expires_at' in metadata) {
      throw new Error('the document holds a client secret');
    }
    const authMethod = metadata.token_endpoint_auth_method ?? 'none';
    if (typeof authMethod !== 'string' || SECRET_AUTH_METHODS.has(authMethod)) {
      throw new Error('the document asks for a shared-secret auth method');
    }
    if (!Array.isArray(metadata.redirect_uris) || metadata.redirect_uris.length === 0) {
      throw new Error('the document lists no redirect_uris');
    }
    return { ...metadata, token_endpoint_auth_method: authMethod };
  }
}
