import type { OutboundFetch } from './outbound.js';
import type { TokenResponseShape } from './templates/template.js';

/**
 * Token endpoints that do not speak RFC 6749 §5 exactly, adapted at oauth4webapi's `customFetch`
 * hook so that its own request building and response validation still run unchanged: a JSON
 * request body (Notion), errors answered with HTTP 200 (Slack `{ok:false}`, GitHub `{error}`) or
 * without an `error` field (HubSpot `{status}`), and Slack's user token nested in `authed_user`.
 * Only requests to the token endpoint are touched.
 */
export interface TokenEndpointQuirks {
  tokenEndpoint: string;
  requestBody?: 'json' | undefined;
  responseShape?: TokenResponseShape | undefined;
}

/** Wraps `fetch` so the token endpoint's quirks are undone; `fetch` itself when there are none. */
export function adaptTokenEndpoint(fetch: OutboundFetch, quirks: TokenEndpointQuirks): OutboundFetch {
  const shape = quirks.responseShape ?? 'standard';
  if (quirks.requestBody !== 'json' && shape === 'standard') return fetch;
  const endpoint = new URL(quirks.tokenEndpoint).href;
  return async (input, init) => {
    if (new URL(String(input)).href !== endpoint) return fetch(input, init);
    const request = quirks.requestBody === 'json' ? asJsonBody(init) : init;
    const response = await fetch(input, request);
    return shape === 'standard' ? response : normalise(response, shape);
  };
}

/** The form body as a JSON object of strings (Notion's token endpoint takes only JSON). */
function asJsonBody(init: RequestInit | undefined): RequestInit | undefined {
  if (!(init?.body instanceof URLSearchParams)) return init;
  const headers = new Headers(init.headers);
  headers.set('content-type', 'application/json');
  return { ...init, headers, body: JSON.stringify(Object.fromEntries(init.body.entries())) };
}

/** Slack error codes by what they mean for the grant; anything else is retried. */
const slackErrors: Record<string, string> = {
  invalid_refresh_token: 'invalid_grant',
  invalid_code: 'invalid_grant',
  code_already_used: 'invalid_grant',
  code_expired: 'invalid_grant',
  invalid_grant: 'invalid_grant',
  token_revoked: 'invalid_grant',
  token_expired: 'invalid_grant',
  invalid_client_id: 'invalid_client',
  bad_client_secret: 'invalid_client',
  invalid_client: 'invalid_client',
  bad_redirect_uri: 'invalid_client',
  oauth_authorization_url_mismatch: 'invalid_client',
  invalid_grant_type: 'unsupported_grant_type',
};

/** GitHub error codes (answered with HTTP 200); others pass as they are. */
const githubErrors: Record<string, string> = {
  bad_refresh_token: 'invalid_grant',
  bad_verification_code: 'invalid_grant',
  incorrect_client_credentials: 'invalid_client',
  redirect_uri_mismatch: 'invalid_client',
  unverified_user_email: 'access_denied',
};

/** HubSpot `status` values of token errors. */
const hubspotErrors: Record<string, string> = {
  BAD_REFRESH_TOKEN: 'invalid_grant',
  BAD_AUTH_CODE: 'invalid_grant',
  BAD_CLIENT_ID: 'invalid_client',
  BAD_CLIENT_SECRET: 'invalid_client',
  BAD_REDIRECT_URI: 'invalid_client',
  BAD_GRANT_TYPE: 'unsupported_grant_type',
};

type Json = Record<string, unknown>;

/** Rewrites one token response into RFC 6749 §5.1 / §5.2 form; what is not JSON passes unread. */
async function normalise(
  response: Response,
  shape: Exclude<TokenResponseShape, 'standard'>,
): Promise<Response> {
  if (!(response.headers.get('content-type') ?? '').includes('json')) return response;
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return rebuilt(response, response.status, text);
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    return rebuilt(response, response.status, text);
  const b = body as Json;
  switch (shape) {
    case 'slack':
      return slackAnswer(response, b);
    case 'github':
      if (typeof b.error === 'string')
        return oauthError(response, githubErrors[b.error] ?? b.error, b.error, 400);
      return rebuilt(response, response.status, text);
    case 'hubspot':
      if (
        response.status >= 400 &&
        response.status < 500 &&
        typeof b.status === 'string' &&
        b.error === undefined
      ) {
        const mapped = hubspotErrors[b.status];
        return mapped === undefined
          ? oauthError(response, 'invalid_request', b.status, response.status)
          : oauthError(response, mapped, b.status, 400);
      }
      return rebuilt(response, response.status, text);
  }
}

/**
 * Slack's `oauth.v2.access`: `{ok:false, error}` becomes an OAuth error (a 429 for `ratelimited`,
 * a 503 for unknown codes, so they are retried); `{ok:true}` with a user token in `authed_user`
 * becomes that token's response, the bot token (if any) left out.
 */
function slackAnswer(response: Response, b: Json): Response {
  if (b.ok === false) {
    const code = typeof b.error === 'string' ? b.error : 'unknown';
    if (code === 'ratelimited') return oauthError(response, 'temporarily_unavailable', code, 429);
    const mapped = slackErrors[code];
    return mapped === undefined
      ? oauthError(response, 'temporarily_unavailable', code, 503)
      : oauthError(response, mapped, code, 400);
  }
  const user = b.authed_user as Json | undefined;
  if (typeof user === 'object' && user !== null && typeof user.access_token === 'string') {
    const {
      ok: _ok,
      authed_user: _user,
      access_token: _bot,
      refresh_token: _botRefresh,
      expires_in: _botExpiry,
      ...rest
    } = b;
    return rebuilt(response, 200, JSON.stringify({ ...rest, ...user, token_type: 'Bearer' }));
  }
  const { ok: _ok, ...rest } = b;
  return rebuilt(response, 200, JSON.stringify({ ...rest, token_type: 'Bearer' }));
}

/** An RFC 6749 §5.2 error body; the provider's own code is kept as the description. */
function oauthError(from: Response, error: string, providerCode: string, status: number): Response {
  return rebuilt(from, status, JSON.stringify({ error, error_description: providerCode.slice(0, 100) }));
}

function rebuilt(from: Response, status: number, body: string): Response {
  const headers = new Headers(from.headers);
  headers.delete('content-length');
  headers.delete('content-encoding');
  headers.set('content-type', 'application/json');
  return new Response(body, { status, statusText: '', headers });
}
