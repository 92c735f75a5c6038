import type { ColumnType, Generated, Insertable, Selectable, Updateable } from 'kysely';

/** Epoch milliseconds; `bigint` in PostgreSQL (parsed to number), INTEGER in SQLite. */
export type Millis = number;

export type ConnectionStatus = 'active' | 'needs_reauth';
export type ConfigSource = 'config' | 'admin';
export type IntegrationKind = 'oauth' | 'mcp';

/** Identity providers: from the config file (`source: config`) or added by an admin at run time. */
export interface ProvidersTable {
  id: string;
  type: string;
  /** JSON of the non-secret settings (endpoints, tenant, client id, params). */
  settings: string;
  /** Sealed client secret or private key (AAD: providers/<id>/client_secret). */
  client_secret_sealed: string | null;
  /** When the sealed secret was last set or cleared (null: never set). */
  client_secret_changed_at: Millis | null;
  source: ConfigSource;
  enabled: number;
  created_at: Millis;
  updated_at: Millis;
}

/** Integrations and MCP servers (an MCP server is an integration of kind `mcp`). */
export interface IntegrationsTable {
  id: string;
  kind: IntegrationKind;
  name: string;
  provider_id: string | null;
  /** JSON of the non-secret settings: scopes, api base URL, MCP url, params. */
  settings: string;
  /** Sealed client secret of an MCP server given in config (AAD: integrations/<id>/client_secret). */
  client_secret_sealed: string | null;
  /** When the sealed secret was last set or cleared (null: never set). */
  client_secret_changed_at: Millis | null;
  source: ConfigSource;
  enabled: number;
  created_at: Millis;
  updated_at: Millis;
}

export interface ConnectionsTable {
  id: string;
  user_id: string;
  integration_id: string;
  status: ConnectionStatus;
  status_reason: string | null;
  account_id: string | null;
  account_name: string | null;
  account_email: string | null;
  /** JSON array of granted scopes. */
  scopes: string;
  access_token_sealed: string | null;
  refresh_token_sealed: string | null;
  id_token_sealed: string | null;
  token_type: string | null;
  access_token_expires_at: Millis | null;
  last_refreshed_at: Millis | null;
  /** When the scheduler should next refresh this connection; null when nothing is due. */
  next_refresh_at: Millis | null;
  refresh_failures: number;
  /** Cross-instance refresh lease: holder and expiry; `version` fences writes. */
  lease_owner: string | null;
  lease_until: Millis | null;
  /** The holder whose expired lease the current holder took over; null when it was free. */
  lease_taken_from: string | null;
  /** No token request before this time: the provider's Retry-After or throttling answer. */
  refresh_not_before: Millis | null;
  /** The authorization server (metadata `issuer`) that issued the tokens; null before migration 0012. */
  issuer: string | null;
  /** This connection's own API base URL (Salesforce `instance_url`, an Atlassian site); null: the integration's. */
  api_base_url: string | null;
  version: number;
  created_at: Millis;
  updated_at: Millis;
}

export interface PendingAuthorizationsTable {
  /** SHA-256 (hex) of the `state` value; the state itself is never stored. */
  state_hash: string;
  user_id: string;
  integration_id: string;
  /** Set on Reconnect: the connection whose tokens a success replaces. */
  connection_id: string | null;
  code_verifier_sealed: string;
  nonce: string | null;
  expected_issuer: string | null;
  redirect_uri: string;
  return_to: string;
  created_at: Millis;
  expires_at: Millis;
  consumed_at: Millis | null;
  /** Derived from the session of the browser that started the flow; null when started with a bearer. */
  browser_binding: string | null;
  /** JSON array of the scopes asked for, when not the integration's defaults (MCP step-up). */
  scopes: string | null;
  /** The gateway's URL elicitation this flow answers, marked complete on success. */
  elicitation_id: string | null;
}

/** OAuth clients obtained by dynamic registration (RFC 7591), keyed by issuer and redirect URI. */
export interface OAuthClientsTable {
  id: string;
  issuer: string;
  redirect_uri: string;
  client_id: string;
  client_secret_sealed: string | null;
  /** JSON of the registration response minus secrets. */
  metadata: string;
  created_at: Millis;
  expires_at: Millis | null;
}

/** The last discovery of each MCP server: what it found, or the problem that stopped it. */
export interface McpDiscoveryTable {
  integration_id: string;
  ok: number;
  /** A readable sentence naming what is wrong (never a token); null when ok. */
  problem: string | null;
  /** JSON: resource, issuer, registration method, scopes (what was found before any problem). */
  summary: string;
  checked_at: Millis;
}

/**
 * Clients registered dynamically (RFC 7591) at an MCP server's authorization server, keyed by
 * issuer and redirect URI, shared by all users and instances.
 */
export interface McpRegistrationsTable {
  id: string;
  issuer: string;
  redirect_uri: string;
  client_id: string;
  /** Sealed JSON of the registration response (AAD: mcp_registrations/<id>/registration_sealed). */
  registration_sealed: string;
  created_at: Millis;
  /** When the client secret expires (`client_secret_expires_at`); null when it does not. */
  expires_at: Millis | null;
}

export interface SessionsTable {
  /** SHA-256 (hex) of the session cookie value. */
  id_hash: string;
  user_id: string;
  user_name: string | null;
  role: string | null;
  /** JSON list of the user's groups at sign-in (null: none). */
  groups: string | null;
  csrf_token: string;
  created_at: Millis;
  expires_at: Millis;
}

export interface NotificationsTable {
  id: string;
  user_id: string;
  type: string;
  connection_id: string | null;
  /** JSON payload shown to the user (never a secret). */
  data: string;
  created_at: Millis;
  read_at: Millis | null;
  resolved_at: Millis | null;
}

export interface WebhookEndpointsTable {
  id: string;
  url: string;
  secret_sealed: string;
  /** JSON array of event types, or null for all. */
  events: string | null;
  source: ConfigSource;
  enabled: number;
  created_at: Millis;
}

export interface WebhookDeliveriesTable {
  id: string;
  endpoint_id: string;
  event_id: string;
  event_type: string;
  payload: string;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  next_attempt_at: Millis | null;
  lease_until: Millis | null;
  last_status: number | null;
  last_error: string | null;
  created_at: Millis;
  delivered_at: Millis | null;
}

/** Append-only (triggers refuse UPDATE and DELETE). */
export interface AuditLogTable {
  id: Generated<number>;
  at: Millis;
  actor: string;
  action: string;
  target_type: string | null;
  target_id: string | null;
  /** JSON details (never a secret). */
  data: string;
  /** The user the entry concerns: the connection's owner, or the acting user (migration 0014). */
  user_id: string | null;
  integration_id: string | null;
}

/** Cross-instance event feed for SSE: instances poll rows newer than their cursor. */
export interface EventsTable {
  id: Generated<number>;
  user_id: string;
  type: string;
  data: string;
  created_at: Millis;
}

/** A revocation that failed and is retried with backoff; the token is dropped when done. */
export interface RevocationsTable {
  id: string;
  provider_id: string;
  connection_id: string;
  token_sealed: string | null;
  token_type_hint: 'refresh_token' | 'access_token';
  attempts: number;
  next_attempt_at: Millis | null;
  lease_until: Millis | null;
  last_error: string | null;
  created_at: Millis;
  done_at: Millis | null;
}

/** A Reconnect that signed in as a different account, waiting for the user to confirm. */
export interface PendingConfirmationsTable {
  id: string;
  user_id: string;
  /**
   * Why it waits: `account`, a Reconnect signed in as another account; `connect` / `reconnect`,
   * a flow finished in a browser that did not start it (for `connect`, `connection_id` is unused).
   */
  kind: ColumnType<'account' | 'connect' | 'reconnect', 'account' | 'connect' | 'reconnect' | undefined>;
  /** For `connect` / `reconnect`: derived from the session that may answer (the callback's browser). */
  browser_binding: ColumnType<string | null, string | null | undefined>;
  connection_id: string;
  integration_id: string;
  /** JSON of the new account (id, name, email). */
  account: string;
  /** Sealed JSON of the new token set. */
  tokens_sealed: string;
  return_to: string;
  created_at: Millis;
  expires_at: Millis;
  /** The gateway's URL elicitation the parked flow answers, completed when it is confirmed. */
  elicitation_id: string | null;
}

/** A sign-in hand-off JWT with a `jti` that was accepted at `/session`; kept until it expires. */
export interface UsedHandOffsTable {
  /** SHA-256 of `[iss, jti]` as JSON. */
  key_hash: string;
  used_at: Millis;
  expires_at: Millis;
}

/** Appended by database triggers when a connection changes or is deleted (migration 0009). */
export interface ConnectionChangesTable {
  seq: Generated<number>;
  connection_id: string;
  changed_at: Millis;
}

/** One MCP gateway session (migration 0011); any instance can serve it from this row. */
export interface McpGatewaySessionsTable {
  /** Our own session id, handed to the client as `Mcp-Session-Id`; random and opaque. */
  id: string;
  user_id: string;
  /** The integration of `/mcp/:integrationId`; null for the aggregate `/mcp`. */
  integration_id: string | null;
  /** From the client's `initialize` request. */
  protocol_version: string;
  /** JSON of the client's `clientInfo`. */
  client_info: string;
  /** JSON of the client's `capabilities`. */
  client_capabilities: string;
  /** The upstream server's `Mcp-Session-Id`; null until an upstream session exists (or when it issues none). */
  upstream_session_id: string | null;
  /**
   * The protocol version the upstream negotiated when the gateway opened the upstream session
   * itself (replaying the client's initialize); null when the client negotiated with it directly.
   */
  upstream_protocol_version: string | null;
  created_at: Millis;
  last_seen_at: Millis;
}

export type McpElicitationStatus = 'pending' | 'complete';

/** An opaque "connect this MCP server" link handed to a client when its user must act (migration 0011). */
export interface McpElicitationsTable {
  /** 32 random bytes, base64url; the `elicitation` parameter of `/connect/:integrationId`. */
  id: string;
  user_id: string;
  integration_id: string;
  /** The gateway session that asked; null when none. */
  session_id: string | null;
  /** JSON array of the scopes to ask for (step-up: granted ∪ challenged); null for the integration's defaults. */
  scopes: string | null;
  status: McpElicitationStatus;
  created_at: Millis;
  expires_at: Millis;
  completed_at: Millis | null;
}

export interface Database {
  providers: ProvidersTable;
  integrations: IntegrationsTable;
  connections: ConnectionsTable;
  connection_changes: ConnectionChangesTable;
  pending_authorizations: PendingAuthorizationsTable;
  oauth_clients: OAuthClientsTable;
  mcp_registrations: McpRegistrationsTable;
  sessions: SessionsTable;
  notifications: NotificationsTable;
  webhook_endpoints: WebhookEndpointsTable;
  webhook_deliveries: WebhookDeliveriesTable;
  audit_log: AuditLogTable;
  events: EventsTable;
  revocations: RevocationsTable;
  pending_confirmations: PendingConfirmationsTable;
  used_hand_offs: UsedHandOffsTable;
  mcp_discovery: McpDiscoveryTable;
  mcp_gateway_sessions: McpGatewaySessionsTable;
  mcp_elicitations: McpElicitationsTable;
}

export type ConnectionRow = Selectable<ConnectionsTable>;
export type NewConnectionRow = Insertable<ConnectionsTable>;
export type ConnectionUpdate = Updateable<ConnectionsTable>;
export type AuditRow = Selectable<AuditLogTable>;
export type ReadonlyColumn<T> = ColumnType<T, never, never>;
export type McpGatewaySessionRow = Selectable<McpGatewaySessionsTable>;
export type McpElicitationRow = Selectable<McpElicitationsTable>;
