/**
 * Names on the aggregate endpoint `/mcp`: every tool, prompt and resource of a server is named
 * `<integrationId>__<name>` (integration ids never contain `__`). Resolving such a name is also
 * the one place where the aggregate decides whether the user may use that server at all.
 */
import { ErrorCode } from '@modelcontextprotocol/sdk/types.js';
import { mayAccess } from '../../connections/access.js';
import type { IntegrationRecord } from '../../store/repos/catalog.js';
import type { McpIntegrations } from './integrations.js';
import type { RpcError } from './jsonrpc.js';

/** Separates the integration id from the server's own name. */
export const nameSeparator = '__';

/** A prefixed name resolved: the server and its own name for the item. */
export interface NamedItem {
  integration: IntegrationRecord;
  name: string;
}

/**
 * The integration a prefixed name routes to and the server's own name; `disabled` when an
 * administrator disabled a server this user may otherwise use (its connection is kept but not
 * usable, as the contract says of the proxy's 409); undefined when there is no such MCP
 * integration or it is limited to groups the caller is in none of: all those answer the same
 * "unknown name" error, so a name does not tell whether a server exists.
 */
export async function resolveName(
  integrations: Pick<McpIntegrations, 'get'>,
  caller: { groups: readonly string[] },
  prefixed: string,
): Promise<NamedItem | { disabled: IntegrationRecord } | undefined> {
  const at = prefixed.indexOf(nameSeparator);
  if (at <= 0) return undefined;
  const integration = await integrations.get(prefixed.slice(0, at));
  if (integration === undefined || !mayAccess(integration, caller.groups)) return undefined;
  if (!integration.enabled) return { disabled: integration };
  return { integration, name: prefixed.slice(at + nameSeparator.length) };
}

/** The JSON-RPC error for a name that routes nowhere, or to a disabled server. */
export function unroutable(
  prefixed: string,
  resolved: { disabled: IntegrationRecord } | undefined,
): RpcError {
  if (resolved === undefined) return unknownName(prefixed);
  const { id, name } = resolved.disabled;
  return {
    code: ErrorCode.InvalidRequest,
    message: `${name} (${id}) is disabled by an administrator: its connection is kept, but it cannot be used until it is enabled again.`,
    data: { code: 'integration_disabled', integration: id },
  };
}

/** The JSON-RPC error for a name that routes nowhere (the same whether the server exists or not). */
export function unknownName(prefixed: string): RpcError {
  return {
    code: ErrorCode.InvalidParams,
    message: `Unknown name ${JSON.stringify(prefixed)}: names are <integration>${nameSeparator}<name>.`,
  };
}
