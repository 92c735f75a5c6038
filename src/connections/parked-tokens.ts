import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Sealer } from '../crypto/index.js';
import { ProviderError } from '../oauth/errors.js';
import type { ProviderClients } from '../oauth/registry.js';
import { TokenSet } from '../oauth/token-set.js';
import type { Logger } from '../observability/logger.js';
import type { Database, PendingConfirmationsTable } from '../store/types.js';
import type { RevocationQueue } from './revocations.js';

/** Why a finished flow's tokens wait for a click instead of being stored (see PendingConfirmationsTable). */
export type ParkedKind = 'account' | 'connect' | 'reconnect';

/** A token set as sealed while it waits for a confirmation. */
interface SerializedTokens {
  accessToken: string;
  refreshToken?: string | undefined;
  idToken?: string | undefined;
  tokenType: string;
  expiresAt: number | null;
  scopes: string[] | null;
  account: TokenSet['account'];
  issuer?: string | undefined;
  apiBaseUrl?: string | undefined;
}

const sealContext = (id: string) => ({ table: 'pending_confirmations', rowId: id, field: 'tokens_sealed' });

/**
 * Parks a finished flow's tokens, sealed, in `pending_confirmations` until the user answers (or
 * `expiresAt` passes and housekeeping deletes them); nothing touches a connection. Returns its id.
 */
export async function parkTokens(
  db: Kysely<Database>,
  sealer: Sealer,
  p: {
    kind: ParkedKind;
    userId: string;
    connectionId: string;
    integrationId: string;
    tokens: TokenSet;
    returnTo: string;
    browserBinding: string | null;
    now: number;
    expiresAt: number;
    elicitationId?: string | null;
  },
): Promise<string> {
  const id = randomUUID();
  const t = p.tokens;
  const serialized: SerializedTokens = {
    accessToken: t.accessToken,
    refreshToken: t.refreshToken,
    idToken: t.idToken,
    tokenType: t.tokenType,
    expiresAt: t.expiresAt,
    scopes: t.scopes,
    account: t.account,
    issuer: t.issuer,
    apiBaseUrl: t.apiBaseUrl,
  };
  await db
    .insertInto('pending_confirmations')
    .values({
      id,
      kind: p.kind,
      browser_binding: p.browserBinding,
      user_id: p.userId,
      connection_id: p.connectionId,
      integration_id: p.integrationId,
      account: JSON.stringify(t.account),
      tokens_sealed: sealer.seal(JSON.stringify(serialized), sealContext(id)),
      return_to: p.returnTo,
      elicitation_id: p.elicitationId ?? null,
      created_at: p.now,
      expires_at: p.expiresAt,
    })
    .execute();
  return id;
}

/** Opens a parked row's tokens (to store them on a connection, or to revoke them). */
export function openParkedTokens(
  sealer: Sealer,
  row: Pick<PendingConfirmationsTable, 'id' | 'tokens_sealed'>,
): TokenSet {
  return new TokenSet(JSON.parse(sealer.open(row.tokens_sealed, sealContext(row.id))) as SerializedTokens);
}

/**
 * Revokes declined tokens at the provider where it offers RFC 7009 revocation (the refresh
 * token, which ends the grant, else the access token). Best effort: a transient failure is
 * queued for retry, anything else only logged; the user is never blocked. @see RFC 7009 §2
 */
export async function revokeDeclined(
  d: { clients: ProviderClients; revocations?: RevocationQueue | undefined; logger?: Logger | undefined },
  providerId: string,
  parkedId: string,
  tokens: TokenSet,
): Promise<'revoked' | 'unsupported' | 'retrying' | 'failed'> {
  const token = tokens.refreshToken ?? tokens.accessToken;
  const hint = tokens.refreshToken !== undefined ? 'refresh_token' : 'access_token';
  try {
    const client = await d.clients.forKey(providerId, { evenDisabled: true });
    if (!client.supportsRevocation) return 'unsupported';
    await client.revoke(token, hint);
    return 'revoked';
  } catch (error) {
    const reason = error instanceof ProviderError ? error.kind : 'error';
    d.logger?.warn({ parked: parkedId, reason }, 'revocation of declined tokens failed');
    if ((reason === 'transient' || reason === 'error') && d.revocations !== undefined) {
      await d.revocations.enqueue({ providerId, connectionId: parkedId, token, hint });
      return 'retrying';
    }
    return 'failed';
  }
}
