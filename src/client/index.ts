/**
 * `nunq-connect/client`: a typed client of the nunq-connect HTTP API for browsers and Node
 * (fetch only, no Node built-ins). Types come from the zod schemas that validate the service's
 * routes and generate its OpenAPI document (type-only imports: nothing of zod is loaded).
 *
 * ```ts
 * const nunq = createClient({ baseUrl: 'https://connect.example', token: () => platformJwt() });
 * const integrations = await nunq.listIntegrations();
 * const outcome = await nunq.connect('sharepoint'); // in a click handler, in a browser
 * ```
 */
import type {
  AdminConnection,
  AdminConnectionOverview,
  AdminIntegration,
  AdminProvider,
  AdminWebhookDelivery,
  AdminWebhookEndpoint,
  AuditEntry,
  AuthorizationUrl,
  Connection,
  Integration,
  Me,
  Notification,
} from '../http/openapi/schemas.js';
import { type ConnectOptions, type ConnectOutcome, openConnectPopup } from './popup.js';
import { type ProblemDetails, ProblemError } from './problem-error.js';

export type {
  AdminConnection,
  AdminConnectionOverview,
  AdminIntegration,
  AdminProvider,
  AdminWebhookDelivery,
  AdminWebhookEndpoint,
  AuditEntry,
  AuthorizationUrl,
  Connection,
  Integration,
  Me,
  Notification,
} from '../http/openapi/schemas.js';
export type { ConnectOptions, ConnectOutcome, PopupHost, PopupWindow } from './popup.js';
export { PopupError, type PopupFailure, type ProblemDetails, ProblemError } from './problem-error.js';

export interface ClientOptions {
  /** The service's public URL (`server.publicUrl`), e.g. `https://connect.example`. */
  baseUrl: string;
  /**
   * The platform JWT sent as `Authorization: Bearer`, or a function returning a fresh one per
   * request. Without it, calls carry the browser's session cookie (same origin only) and need
   * `csrfToken` for changes.
   */
  token?: string | (() => string | Promise<string>);
  /** The session's CSRF token (from `me()`), for cookie-authenticated changes. */
  csrfToken?: string;
  /** The fetch to use (default the global one). */
  fetch?: typeof fetch;
}

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** A client of one nunq-connect service. Every failure is a `ProblemError`. */
export class NunqConnectClient {
  readonly baseUrl: string;
  readonly #options: ClientOptions;

  constructor(options: ClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.#options = options;
  }

  /** Who the credential signs in as (and, with a session cookie, its CSRF token). */
  me(): Promise<Me> {
    return this.request('GET', '/api/v1/me');
  }

  /** The integrations this user may connect, each with its status. */
  listIntegrations(): Promise<Integration[]> {
    return this.request('GET', '/api/v1/integrations');
  }

  listConnections(): Promise<Connection[]> {
    return this.request('GET', '/api/v1/connections');
  }

  getConnection(id: string): Promise<Connection> {
    return this.request('GET', `/api/v1/connections/${encodeURIComponent(id)}`);
  }

  /** Starts connecting: send the user's browser to `authorizationUrl`. */
  createConnection(input: { integration: string; returnTo?: string }): Promise<AuthorizationUrl> {
    return this.request('POST', '/api/v1/connections', input);
  }

  /** Starts reconnecting; success replaces the tokens of the same connection. */
  reconnectConnection(id: string, input: { returnTo?: string } = {}): Promise<AuthorizationUrl> {
    return this.request('POST', `/api/v1/connections/${encodeURIComponent(id)}/reconnect`, input);
  }

  /** Disconnects: revoked at the provider where it can be, tokens deleted. */
  deleteConnection(id: string): Promise<void> {
    return this.request('DELETE', `/api/v1/connections/${encodeURIComponent(id)}`);
  }

  listNotifications(): Promise<Notification[]> {
    return this.request('GET', '/api/v1/notifications');
  }

  markNotificationRead(id: string): Promise<void> {
    return this.request('POST', `/api/v1/notifications/${encodeURIComponent(id)}/read`);
  }

  /** The administrators' API (a non-admin gets `ProblemError` 404 `not_found`). */
  readonly admin = {
    listProviders: (): Promise<AdminProvider[]> => this.request('GET', '/api/v1/admin/providers'),
    listIntegrations: (): Promise<AdminIntegration[]> => this.request('GET', '/api/v1/admin/integrations'),
    listConnections: (
      query: {
        status?: 'active' | 'needs_reauth';
        integration?: string;
        user?: string;
        limit?: number;
        offset?: number;
      } = {},
    ): Promise<AdminConnection[]> => this.request('GET', `/api/v1/admin/connections${queryString(query)}`),
    connectionOverview: (): Promise<AdminConnectionOverview[]> =>
      this.request('GET', '/api/v1/admin/connections/overview'),
    refreshConnection: (
      id: string,
    ): Promise<{ outcome: 'refreshed' | 'needs_reauth' | 'unavailable'; connection: AdminConnection }> =>
      this.request('POST', `/api/v1/admin/connections/${encodeURIComponent(id)}/refresh`),
    deleteConnection: (id: string): Promise<void> =>
      this.request('DELETE', `/api/v1/admin/connections/${encodeURIComponent(id)}`),
    listAudit: (
      query: {
        user?: string;
        integration?: string;
        action?: string;
        since?: string;
        until?: string;
        limit?: number;
        before?: number;
      } = {},
    ): Promise<AuditEntry[]> => this.request('GET', `/api/v1/admin/audit${queryString(query)}`),
    listWebhooks: (): Promise<AdminWebhookEndpoint[]> => this.request('GET', '/api/v1/admin/webhooks'),
    createWebhook: (body: {
      url: string;
      secret: string;
      events?: string[];
    }): Promise<AdminWebhookEndpoint> => this.request('POST', '/api/v1/admin/webhooks', body),
    deleteWebhook: (id: string): Promise<void> =>
      this.request('DELETE', `/api/v1/admin/webhooks/${encodeURIComponent(id)}`),
    listDeliveries: (query: { endpoint?: string; limit?: number } = {}): Promise<AdminWebhookDelivery[]> =>
      this.request('GET', `/api/v1/admin/webhooks/deliveries${queryString(query)}`),
    redeliver: (deliveryId: string): Promise<{ id: string }> =>
      this.request('POST', `/api/v1/admin/webhooks/deliveries/${encodeURIComponent(deliveryId)}/redeliver`),
  };

  /** The service's OpenAPI 3.1 document. */
  openApi(): Promise<Record<string, unknown>> {
    return this.request('GET', '/api/v1/openapi.json');
  }

  /**
   * Opens the Connect confirmation of `integration` as a popup (browser only; call it from a
   * click handler) and resolves with the outcome the service posts back. The page embedding this
   * client must be on an origin listed in the service's `server.embedOrigins`.
   */
  connect(integration: string, options: ConnectOptions = {}): Promise<ConnectOutcome> {
    return openConnectPopup(this.baseUrl, integration, options);
  }

  /** Calls any route of the API: JSON in, JSON out (undefined for 204); problems thrown. */
  async request<T>(method: Method, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json, application/problem+json' };
    const token = this.#options.token;
    const bearer = typeof token === 'function' ? await token() : token;
    if (bearer !== undefined) headers.authorization = `Bearer ${bearer}`;
    else if (this.#options.csrfToken !== undefined && method !== 'GET')
      headers['x-csrf-token'] = this.#options.csrfToken;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const doFetch = this.#options.fetch ?? globalThis.fetch;
    let response: Response;
    try {
      response = await doFetch(`${this.baseUrl}${path}`, {
        method,
        headers,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        // A bearer call never carries cookies; a cookie call only to the same origin.
        credentials: bearer === undefined ? 'same-origin' : 'omit',
      });
    } catch {
      throw new ProblemError(0, undefined, 'The service could not be reached');
    }
    if (!response.ok) throw new ProblemError(response.status, await problemOf(response));
    if (response.status === 204) return undefined as T;
    return (await response.json()) as T;
  }
}

/** A client of the service at `options.baseUrl`. */
export function createClient(options: ClientOptions): NunqConnectClient {
  return new NunqConnectClient(options);
}

async function problemOf(response: Response): Promise<ProblemDetails | undefined> {
  if (!/^application\/problem\+json/i.test(response.headers.get('content-type') ?? '')) return undefined;
  try {
    return (await response.json()) as ProblemDetails;
  } catch {
    return undefined;
  }
}

function queryString(query: Record<string, string | number | undefined>): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) if (value !== undefined) params.set(key, String(value));
  const text = params.toString();
  return text === '' ? '' : `?${text}`;
}
