/**
 * The MCP gateway's answers as data: what a route sends back, JSON-RPC error answers, and the
 * error texts for a server that could not be asked (they name the integration, never a token
 * and never upstream text).
 */
import type { Readable } from 'node:stream';
import {
  ErrorCode,
  LATEST_PROTOCOL_VERSION,
  SUPPORTED_PROTOCOL_VERSIONS,
} from '@modelcontextprotocol/sdk/types.js';
import type { IntegrationRecord } from '../../store/repos/catalog.js';
import type { ConnectionRow } from '../../store/types.js';
import { ForwardError } from '../forwarder.js';
import type { JSONRPCMessage, RpcError } from './jsonrpc.js';
import type { GatewaySession } from './sessions.js';

/** What a route sends back. */
export interface GatewayAnswer {
  status: number;
  headers: Record<string, string>;
  body?: string | Buffer | Readable;
}

export const sessionHeader = 'mcp-session-id';
export const json = { 'content-type': 'application/json' };

export function isInitializedNotification(message: JSONRPCMessage): boolean {
  return (
    (message as { method?: unknown; id?: unknown }).method === 'notifications/initialized' &&
    !('id' in message)
  );
}

export function withSession(
  headers: Record<string, string>,
  session: GatewaySession,
): Record<string, string> {
  const out = { ...headers };
  delete out['www-authenticate'];
  out[sessionHeader] = session.id;
  return out;
}

export function rpcAnswer(status: number, body: unknown): GatewayAnswer {
  return { status, headers: json, body: JSON.stringify(body) };
}

export function isJson(contentType: string | string[] | undefined): boolean {
  return typeof contentType === 'string' && mediaTypeIs(contentType, 'application/json');
}

export function isEventStream(contentType: string | undefined): boolean {
  return contentType !== undefined && mediaTypeIs(contentType, 'text/event-stream');
}

/**
 * Whether a Content-Type names `type` (lower case), parameters and case aside. The exact value
 * is tried first: split, trim and lower-case on every message showed in the gateway's profile.
 */
function mediaTypeIs(contentType: string, type: string): boolean {
  if (contentType === type) return true;
  return contentType.split(';')[0]!.trim().toLowerCase() === type;
}

export function grantedScopes(row: ConnectionRow): string[] {
  try {
    const scopes: unknown = JSON.parse(row.scopes);
    return Array.isArray(scopes) ? scopes.filter((s): s is string => typeof s === 'string') : [];
  } catch {
    return [];
  }
}

export function dropped(integration: IntegrationRecord): RpcError {
  return {
    code: ErrorCode.ConnectionClosed,
    message: `${integration.name} (${integration.id}) closed the stream before answering this request.`,
  };
}

/** The JSON-RPC error for a server that could not be asked; names the integration, never a token or upstream text. */
export function unreachable(integration: IntegrationRecord, error: unknown): RpcError {
  const name = `${integration.name} (${integration.id})`;
  const code = (error as { code?: unknown }).code;
  if (error instanceof ForwardError) {
    const why =
      error.code === 'upstream_timeout'
        ? 'did not answer in time'
        : error.code === 'outbound_blocked'
          ? 'is at an address the outbound policy refuses'
          : 'could not be reached';
    return { code: ErrorCode.InternalError, message: `${name} ${why}.` };
  }
  if (code === 'provider_unavailable') {
    return {
      code: ErrorCode.InternalError,
      message: `${name}: its authorization server is unavailable; try again shortly.`,
    };
  }
  if (code === 'provider_misconfigured') {
    return {
      code: ErrorCode.InternalError,
      message: `${name}: its authorization server rejects this service; an administrator has been told.`,
    };
  }
  if (code === 'upstream_session_failed') {
    return { code: ErrorCode.InternalError, message: `${name} did not open a session.` };
  }
  return { code: ErrorCode.InternalError, message: `${name} could not be asked.` };
}

export function reasonOf(error: unknown): string {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : error instanceof Error ? error.name : 'unknown';
}

/**
 * Our answer to `initialize` when the server cannot be asked with the user's token yet: the
 * client's protocol version when the SDK supports it (else the latest), the three server
 * features, and a name that says which integration this is.
 */
export function localInitializeResult(integration: IntegrationRecord, clientVersion: string) {
  return {
    protocolVersion: SUPPORTED_PROTOCOL_VERSIONS.includes(clientVersion)
      ? clientVersion
      : LATEST_PROTOCOL_VERSION,
    capabilities: {
      tools: { listChanged: true },
      prompts: { listChanged: true },
      resources: { listChanged: true },
    },
    serverInfo: { name: `nunq-connect/${integration.id}`, title: integration.name, version: '1.0.0' },
    instructions: `${integration.name}, through nunq-connect. Its tools become available once you have connected it.`,
  };
}
