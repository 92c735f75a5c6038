import * as oauth from 'oauth4webapi';
import type { OutboundFetch } from './outbound.js';
import type { AccountIdentity } from './token-set.js';

/** Larger answers are refused unread: an account is a few hundred bytes, never 64 KiB. */
export const userinfoMaxBytes = 64 * 1024;

/** One best-effort userinfo request, for a provider that gave no ID token. */
export interface UserinfoRequest {
  as: oauth.AuthorizationServer & { userinfo_endpoint: string };
  client: oauth.Client;
  accessToken: string;
  /** The SSRF-guarded outbound fetch. */
  fetch: OutboundFetch;
  /** Plain http only where the outbound policy admits it (as for every OAuth endpoint). */
  allowHttp: boolean;
  /** Deadline for the whole exchange, body included. */
  timeoutMs: number;
}

/**
 * The connected account from a `type: oauth2` provider's userinfo endpoint (GitHub-style
 * `GET /user`), read with the access token of a code exchange. Best effort: any failure (status,
 * timeout, size, not a JSON object) gives an empty account and never fails the connection; the
 * body never reaches an error or a log. An OIDC-style answer (with `sub`) is checked by
 * oauth4webapi. @see RFC 6750 §2.1, OIDC Core §5.3
 */
export async function fetchUserinfoAccount(req: UserinfoRequest): Promise<AccountIdentity> {
  const url = new URL(req.as.userinfo_endpoint);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && req.allowHttp)) return {};
  try {
    const response = await req.fetch(url, {
      method: 'GET',
      headers: { authorization: `Bearer ${req.accessToken}`, accept: 'application/json' },
      signal: AbortSignal.timeout(req.timeoutMs),
    });
    if (response.status !== 200) {
      await discard(response);
      return {};
    }
    const text = await readBounded(response, userinfoMaxBytes);
    if (text === undefined) return {};
    const body: unknown = JSON.parse(text);
    if (typeof body !== 'object' || body === null || Array.isArray(body)) return {};
    if (!('sub' in body)) return accountFromUserinfo(body as Record<string, unknown>);
    // oauth4webapi reads bodies unbounded, so it gets the bounded text. No ID token: no `sub` to match.
    const checked = new Response(text, {
      status: 200,
      headers: { 'content-type': response.headers.get('content-type') ?? 'application/json' },
    });
    const claims = await oauth.processUserInfoResponse(req.as, req.client, oauth.skipSubjectCheck, checked);
    return accountFromUserinfo(claims);
  } catch {
    return {};
  }
}

/**
 * Maps a userinfo object to the account: id from `sub`, else `id`, else `user_id` (integers
 * stringified); name from `name`, else `preferred_username`, `login`, `username`; e-mail from
 * `email` when it contains `@`. Written here because no library does it: outside OIDC there is
 * no standard user endpoint, and oauth4webapi/openid-client accept only answers with `sub`.
 */
export function accountFromUserinfo(body: Record<string, unknown>): AccountIdentity {
  const id = text(body.sub) ?? identifier(body.id) ?? identifier(body.user_id);
  const name = text(body.name) ?? text(body.preferred_username) ?? text(body.login) ?? text(body.username);
  const email = text(body.email);
  return {
    ...(id === undefined ? {} : { id }),
    ...(name === undefined ? {} : { name }),
    ...(email?.includes('@') ? { email } : {}),
  };
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 ? value.slice(0, 320) : undefined;
}

/** A string id, or an integer one (GitHub's `id`); an unsafe integer is refused, as it may have been rounded. */
function identifier(value: unknown): string | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? String(value) : undefined;
  return text(value);
}

/** The body as UTF-8, or undefined when it is (or says it is) larger than `limit` bytes. */
async function readBounded(response: Response, limit: number): Promise<string | undefined> {
  if (Number(response.headers.get('content-length')) > limit) {
    await discard(response);
    return undefined;
  }
  if (response.body === null) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => {});
      return undefined;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function discard(response: Response): Promise<void> {
  await response.body?.cancel().catch(() => {});
}
