// biome-ignore-all lint/suspicious/noTemplateCurlyInString: search and replace strings quote source code, `${…}` included
/**
 * Deliberate breaks of the security-critical protections, for scripts/mutation-check.ts. Each
 * entry replaces one exact string (it must occur exactly once in `file`) and names the few test
 * files that must fail because of it. Keep each test list small: the whole check should run in
 * a few minutes. When a refactor moves the code, update `search` (the check reports `stale`).
 */
export interface Mutation {
  /** Stable id, for `--only`. */
  id: string;
  /** Path from the repository root. */
  file: string;
  /** Exact text to replace; must occur exactly once in the file. */
  search: string;
  replace: string;
  /** Further edits in the same file that belong to the same break (each must match exactly once). */
  also?: { search: string; replace: string }[];
  /** One line: what protection is gone. */
  description: string;
  /** Test files (from the repository root) of which at least one must fail. */
  tests: string[];
}

const sealerTests = ['test/crypto/sealer.test.ts'];
const connectFlow = ['test/connections/connect-flow.test.ts'];
const redaction = ['test/observability/redaction-table.test.ts'];
const jwks = ['test/identity/jwt.test.ts', 'test/identity/jwks-sign-in.test.ts'];

export const mutations: Mutation[] = [
  // --- sealing at rest
  {
    id: 'sealer-aad-row',
    file: 'src/crypto/sealer.ts',
    search: 'return `${table}|${rowId}|${field}`;',
    replace: 'return `${table}|${field}`;',
    description: 'AAD no longer binds the row id: a sealed value moved to another row opens there',
    tests: sealerTests,
  },
  {
    id: 'sealer-aad-key-id',
    file: 'src/crypto/sealer.ts',
    search: 'const aadPrefix = `nunq-connect/v1|${id}|`;',
    replace: "const aadPrefix = 'nunq-connect/v1||';",
    description: 'AAD no longer binds the key id: a value relabelled to another id with the same bytes opens',
    tests: sealerTests,
  },
  {
    id: 'sealer-key-lookup',
    file: 'src/crypto/sealer.ts',
    search: 'const k = keyId === this.#active.id ? this.#active : this.#keys.get(keyId);',
    replace: 'const k = this.#keys.get(keyId) ?? this.#active;',
    description: 'an unknown key id falls back to the active key instead of key_unknown',
    tests: sealerTests,
  },
  {
    id: 'keyring-key-lookup',
    file: 'src/crypto/keyring.ts',
    search: "if (!key) throw new KeyringError('key_unknown'",
    replace: "if (!key && id === '') throw new KeyringError('key_unknown'",
    description: 'Keyring.keyFor returns undefined for an unknown id instead of throwing key_unknown',
    tests: ['test/crypto/keyring.test.ts'],
  },
  {
    id: 'rotation-cas',
    file: 'src/store/key-rotation.ts',
    search: ' and ${sql.ref(`${table}.${column}`)} = v.old`',
    replace: '`',
    description: 'key rotation writes without compare-and-swap: overwrites a concurrent refresh',
    tests: ['test/store/key-rotation-race.test.ts'],
  },
  // --- authorization flow
  {
    id: 'state-single-use',
    file: 'src/store/repos/pending-authorizations.ts',
    search: "      .where('consumed_at', 'is', null)\n",
    replace: '',
    description: 'a used state is consumed again: a replayed callback is processed',
    tests: connectFlow,
  },
  {
    id: 'state-user-binding',
    file: 'src/store/repos/pending-authorizations.ts',
    search: "      .where('user_id', '=', userId)\n      .where('consumed_at', 'is', null)",
    replace: "      .where('consumed_at', 'is', null)",
    description: "another user's browser can complete a flow (state not bound to the user)",
    tests: connectFlow,
  },
  {
    id: 'flow-browser-binding',
    file: 'src/connections/authorization-flow.ts',
    search: '    if (!isSameBrowser(p.browser_binding, input.browserBinding)) {',
    replace: '    if (false) {',
    description:
      'a flow finishes silently in a browser that did not start it (login CSRF chains into finishing a flow)',
    tests: ['test/connections/browser-binding.test.ts'],
  },
  {
    id: 'parked-flow-browser',
    file: 'src/connections/flow-confirmations.ts',
    search:
      '    return row !== undefined && isSameBrowser(row.browser_binding, browserBinding) ? row : undefined;',
    replace: '    return row;',
    description: 'a parked flow can be confirmed by a bearer or another session of its user',
    tests: ['test/connections/browser-binding.test.ts'],
  },
  {
    id: 'pkce-s256',
    file: 'src/oauth/oauth-client.ts',
    search: "params.set('code_challenge_method', 'S256');",
    replace: "params.set('code_challenge_method', 'plain');",
    description: 'PKCE method plain instead of S256',
    tests: connectFlow,
  },
  {
    id: 'rfc9207-iss',
    file: 'src/oauth/oauth-client.ts',
    search: 'params = oauth.validateAuthResponse(this.#o.as, this.#o.client, req.callbackUrl, req.state);',
    replace:
      "const noIss = new URL(req.callbackUrl); noIss.searchParams.delete('iss'); params = oauth.validateAuthResponse({ ...this.#o.as, authorization_response_iss_parameter_supported: false }, this.#o.client, noIss, req.state);",
    description: 'the callback iss (RFC 9207) is ignored: a mix-up attacker’s response is accepted',
    tests: connectFlow,
  },
  {
    id: 'return-to-origin',
    file: 'src/http/return-to.ts',
    search:
      "if (resolved.origin !== base.origin || resolved.pathname.startsWith('//')) throw invalidReturnTo();",
    replace: 'if (resolved.origin !== base.origin) throw invalidReturnTo();',
    description: 'return_to accepts /.//host, which normalises to //host (another site)',
    tests: ['test/http/return-to.test.ts'],
  },
  // --- sessions, CSRF, JWT
  {
    id: 'csrf-token',
    file: 'src/http/auth.ts',
    search: "if (!constantTimeEqual(sent, identity.csrfToken ?? '')) {",
    replace: "if (sent === '') {",
    description: "any non-empty CSRF token is accepted (not compared with the session's)",
    tests: ['test/http/identity.test.ts'],
  },
  {
    id: 'csrf-origin',
    file: 'src/http/auth.ts',
    search: 'if (origin !== undefined && !sameSiteNull && origin !== new URL(publicUrl).origin) {',
    replace: "if (origin === 'never') {",
    description: 'a cross-origin Origin on a cookie-authenticated write is not refused',
    tests: ['test/http/identity.test.ts'],
  },
  {
    id: 'cookie-httponly',
    file: 'src/http/auth.ts',
    search: "    httpOnly: true,\n    sameSite: 'lax',",
    replace: "    httpOnly: false,\n    sameSite: 'lax',",
    description: 'the session cookie is readable by script (no HttpOnly)',
    tests: ['test/http/secure-cookie.test.ts'],
  },
  {
    id: 'cookie-secure',
    file: 'src/http/auth.ts',
    search: "    secure: auth.secureCookies,\n    path: '/',",
    replace: "    secure: false,\n    path: '/',",
    description: 'the session cookie is sent over plain http on an https deployment (no Secure)',
    tests: ['test/http/secure-cookie.test.ts'],
  },
  {
    id: 'jwt-exp-required',
    file: 'src/identity/jwt.ts',
    search: "requiredClaims: ['exp', 'sub']",
    replace: "requiredClaims: ['sub']",
    description: 'a platform JWT without exp (never expires) is accepted',
    tests: jwks,
  },
  {
    id: 'jwt-alg-jwks',
    file: 'src/identity/jwt.ts',
    search: "jwtVerify(t, jwks, { ...checks, algorithms: ['RS256', 'PS256', 'ES256', 'EdDSA'] })",
    replace: 'jwtVerify(t, jwks, { ...checks })',
    description: 'JWKS tokens are verified with any algorithm the key allows (no allow-list)',
    tests: jwks,
  },
  {
    id: 'jwt-alg-hs256',
    file: 'src/identity/jwt.ts',
    search: "jwtVerify(t, key, { ...checks, algorithms: ['HS256'] })",
    replace: 'jwtVerify(t, key, { ...checks })',
    description: 'shared-secret tokens are verified with any HMAC algorithm (no allow-list)',
    tests: jwks,
  },
  {
    id: 'jwt-issuer',
    file: 'src/identity/jwt.ts',
    search: '...(jwt.issuer === undefined ? {} : { issuer: jwt.issuer }),',
    replace: '',
    description: 'the configured JWT issuer is not checked',
    tests: jwks,
  },
  {
    id: 'admin-404',
    file: 'src/http/auth.ts',
    search: "throw refusal === 'forbidden' ? forbidden() : notFound();",
    replace: "throw identity.via === 'bearer' ? forbidden() : notFound();",
    description: 'admin routes answer 403 to a non-admin bearer, advertising that they exist',
    tests: ['test/http/admin.test.ts'],
  },
  // --- embedding: CORS and the popup Connect
  {
    id: 'cors-any-origin',
    file: 'src/http/cors.ts',
    search: 'if (origin === undefined || !origins.has(origin)) return false;',
    replace: 'if (origin === undefined) return false;',
    description: 'the API answers CORS for any origin, not only server.embedOrigins',
    tests: ['test/http/cors.test.ts'],
  },
  {
    id: 'cors-credentials',
    file: 'src/http/cors.ts',
    search: "reply.header('access-control-allow-origin', origin);",
    replace:
      "reply.header('access-control-allow-origin', origin).header('access-control-allow-credentials', 'true');",
    description: 'CORS allows credentials: the session cookie acts for a cross-origin page',
    tests: ['test/http/cors.test.ts'],
  },
  {
    id: 'cors-proxy',
    file: 'src/http/cors.ts',
    search:
      "return path.startsWith('/api/v1/') && !/^\\/api\\/v1\\/connections\\/[^/]*\\/proxy(?:\\/|$)/.test(path);",
    replace: "return path.startsWith('/api/v1/');",
    description: 'proxied answers grant CORS to the listed origins',
    tests: ['test/http/cors.test.ts'],
  },
  {
    id: 'popup-target-star',
    file: 'src/ui/pages/popup-done.ts',
    search: "'for(var i=0;i<origins.length;i++)window.opener.postMessage(message,origins[i]);' +",
    replace: "'for(var i=0;i<origins.length;i++)window.opener.postMessage(message,\\'*\\');' +",
    description: 'the popup posts its outcome to any opener (target origin *)',
    tests: ['test/http/cors.test.ts'],
  },
  {
    id: 'popup-csp-inline',
    file: 'src/http/routes/embed.ts',
    search: '`script-src ${popupScriptHash}`,',
    replace: '"script-src \'unsafe-inline\'",',
    description: 'the popup page allows any inline script instead of its one script by hash',
    tests: ['test/http/cors.test.ts'],
  },
  {
    id: 'client-message-origin',
    file: 'src/client/popup.ts',
    search: 'if (settled || event.origin !== serviceOrigin || event.source !== popup) return;',
    replace: 'if (settled) return;',
    description: 'connect() takes an outcome from any origin or window',
    tests: ['test/client/client.test.ts'],
  },
  // --- logs
  {
    id: 'redact-state',
    file: 'src/observability/logger.ts',
    search: "  'state',\n];",
    replace: '];',
    description: 'state values are logged',
    tests: redaction,
  },
  {
    id: 'redact-key',
    file: 'src/observability/logger.ts',
    search: "  'key',\n",
    replace: '',
    description: 'key values are logged',
    tests: redaction,
  },
  {
    id: 'redact-password',
    file: 'src/observability/logger.ts',
    search: "  'password',\n",
    replace: '',
    description: 'password values are logged',
    tests: redaction,
  },
  {
    id: 'redact-authorization-code',
    file: 'src/observability/logger.ts',
    search: "  'authorization_code',\n",
    replace: '',
    description: 'authorization_code values are logged',
    tests: redaction,
  },
  {
    id: 'redact-code-verifier',
    file: 'src/observability/logger.ts',
    search: "  'codeVerifier',\n",
    replace: '',
    description: 'codeVerifier values are logged',
    tests: redaction,
  },
  {
    id: 'redact-depth',
    file: 'src/observability/logger.ts',
    search: ', `*.*.*${k}`',
    replace: '',
    description: 'secrets three levels down in a log object are logged',
    tests: redaction,
  },
  // --- outbound guard and proxy (tests: test/oauth/outbound-policy, test/gateway/*)
  {
    id: 'outbound-every-address-allowed',
    file: 'src/oauth/outbound.ts',
    search: '  if (listed(ip, allow)) return true;\n',
    replace: '  return true;\n',
    description: 'outbound: every address allowed',
    tests: ['test/oauth/outbound-policy.test.ts'],
  },
  {
    id: 'outbound-dns-answers-not-checked',
    file: 'src/oauth/outbound.ts',
    search: 'const refused = list.find((a) => !isAddressAllowed(a.address, allow));',
    replace: 'const refused = undefined as LookupAddress | undefined;',
    description: 'outbound: DNS answers not checked',
    tests: ['test/oauth/outbound-policy.test.ts'],
  },
  {
    id: 'outbound-ipv4-inside-ipv6-not-judged',
    file: 'src/oauth/outbound.ts',
    search: "    if (v4 !== undefined) return v4.range() === 'unicast' || listed(v4, allow);\n",
    replace: '',
    description: 'outbound: IPv4 inside IPv6 not judged',
    tests: ['test/oauth/outbound-policy.test.ts'],
  },
  {
    id: 'proxy-request-origin-and-referer-forward',
    file: 'src/gateway/headers.ts',
    search: "  'origin',\n  'referer',\n",
    replace: '',
    description: 'proxy request: Origin and Referer forwarded',
    tests: ['test/gateway/headers.test.ts', 'test/gateway/proxy-hostile.test.ts'],
  },
  {
    id: 'proxy-request-x-forwarded-forwarded',
    file: 'src/gateway/headers.ts',
    search: "    if (key.startsWith('x-forwarded-')) continue;\n",
    replace: '',
    description: 'proxy request: X-Forwarded-* forwarded',
    tests: ['test/gateway/headers.test.ts', 'test/gateway/proxy-hostile.test.ts'],
  },
  {
    id: 'proxy-request-caller-authorization-and-c',
    file: 'src/gateway/headers.ts',
    search: "  'authorization',\n  'cookie',\n",
    replace: '',
    description: 'proxy request: caller Authorization and Cookie forwarded',
    tests: ['test/gateway/headers.test.ts', 'test/gateway/proxy-hostile.test.ts'],
  },
  {
    id: 'proxy-response-set-cookie-passes',
    file: 'src/gateway/headers.ts',
    search: 'const responseAllow = new Set([\n',
    replace: "const responseAllow = new Set([\n  'set-cookie',\n",
    description: 'proxy response: Set-Cookie passes',
    tests: ['test/gateway/headers.test.ts', 'test/gateway/proxy-hostile.test.ts'],
  },
  {
    id: 'proxy-response-cors-passes',
    file: 'src/gateway/headers.ts',
    search: 'const responseAllow = new Set([\n',
    replace:
      "const responseAllow = new Set([\n  'access-control-allow-origin',\n  'access-control-allow-credentials',\n",
    description: 'proxy response: CORS passes',
    tests: ['test/gateway/headers.test.ts', 'test/gateway/proxy-hostile.test.ts'],
  },
  {
    id: 'proxy-response-no-sandbox',
    file: 'src/gateway/headers.ts',
    search: "  \"sandbox; default-src 'none';",
    replace: "  \"default-src 'none';",
    description: 'proxy response: no sandbox',
    tests: ['test/gateway/headers.test.ts', 'test/gateway/proxy-hostile.test.ts'],
  },
  {
    id: 'proxy-response-shared-caching-kept',
    file: 'src/gateway/headers.ts',
    search: 'const privateDirectives = new Set([\n',
    replace: "const privateDirectives = new Set([\n  'public',\n  's-maxage',\n",
    description: 'proxy response: shared caching kept',
    tests: ['test/gateway/headers.test.ts', 'test/gateway/proxy-hostile.test.ts'],
  },
  {
    id: 'proxy-target-dot-segments-pass',
    file: 'src/gateway/target.ts',
    search: "      if (isDotSegment(path, segmentStart, i)) return 'dot_segment';\n",
    replace: '',
    description: 'proxy target: dot segments pass',
    tests: ['test/gateway/target.test.ts', 'test/gateway/proxy-hostile.test.ts'],
  },
  {
    id: 'proxy-target-no-nfkc',
    file: 'src/gateway/target.ts',
    search: "return s.normalize('NFKC');",
    replace: 'return s;',
    description: 'proxy target: no NFKC',
    tests: ['test/gateway/target.test.ts', 'test/gateway/proxy-hostile.test.ts'],
  },
  {
    id: 'proxy-target-whitespace-not-trimmed',
    file: 'src/gateway/target.ts',
    search: 'function isWhitespace(c: number): boolean {\n  return (',
    replace: 'function isWhitespace(c: number): boolean {\n  return c < 0 && (',
    description: 'proxy target: whitespace not trimmed',
    tests: ['test/gateway/target.test.ts', 'test/gateway/proxy-hostile.test.ts'],
  },
  {
    id: 'proxy-target-lax-utf-8',
    file: 'src/gateway/target.ts',
    search: "new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })",
    replace: "new TextDecoder('utf-8', { fatal: false, ignoreBOM: true })",
    description: 'proxy target: lax UTF-8',
    tests: ['test/gateway/target.test.ts', 'test/gateway/proxy-hostile.test.ts'],
  },
  {
    id: 'forwarder-trace-sent',
    file: 'src/gateway/forwarder.ts',
    search: "  if (refusedMethods.has(request.method)) throw new ForwardError('method_not_allowed');\n",
    replace: '',
    description: 'forwarder: TRACE sent',
    tests: ['test/gateway/forwarder.test.ts'],
  },
  {
    id: 'proxy-route-trace-handled-like-any-metho',
    file: 'src/gateway/proxy.ts',
    search: '      scope.route(documented(specs.trace, refuseMethod));\n',
    replace: '      scope.route(documented(specs.trace, handler));\n',
    also: [
      {
        search: '  if (refusedMethods.has(request.method)) return refuseMethod(request, reply);\n',
        replace: '',
      },
    ],
    description: 'proxy route: TRACE handled like any method (the forwarder alone refuses it, without Allow)',
    tests: ['test/gateway/proxy-hostile.test.ts'],
  },
  {
    id: 'proxy-route-session-cookie-accepted',
    file: 'src/gateway/proxy.ts',
    search: "if (identity === undefined || identity.via !== 'bearer') {",
    replace: 'if (identity === undefined) {',
    description: 'proxy route: session cookie accepted',
    tests: ['test/gateway/proxy-hostile.test.ts', 'test/lifecycle/proxy.test.ts'],
  },
  {
    id: 'auth-two-authorization-headers-accepted',
    file: 'src/http/auth.ts',
    search: 'if (++seen > 1) {',
    replace: 'if (++seen > 99) {',
    description: 'auth: two Authorization headers accepted',
    tests: ['test/gateway/proxy-hostile.test.ts'],
  },
  // --- refresh and connection state
  {
    id: 'refresh-version-fence',
    file: 'src/store/repos/connections.ts',
    search:
      "      .where('id', '=', id)\n      .where('version', '=', version)\n      .executeTakeFirst();\n    return Number(r.numUpdatedRows) === 1;",
    replace:
      "      .where('id', '=', id)\n      .executeTakeFirst();\n    return Number(r.numUpdatedRows) === 1;",
    description: 'a refresh writes over a newer version (a Reconnect or a later refresh)',
    tests: ['test/lifecycle/fences.test.ts'],
  },
  {
    id: 'needs-reauth-once',
    file: 'src/connections/refresh-outcomes.ts',
    search:
      '    if (Number(r.numUpdatedRows) !== 1) return false;\n    const db = trx as unknown as Kysely<Database>;',
    replace: '    const db = trx as unknown as Kysely<Database>;',
    description: 'needs_reauth is announced again by every instance that sees the failure',
    tests: ['test/lifecycle/fences.test.ts'],
  },
  {
    id: 'change-feed-gaps',
    file: 'src/connections/connection-changes.ts',
    search: '    seen += await this.#fillGaps(started);\n',
    replace: '',
    description: 'a change committed after a later one (PostgreSQL) never evicts the cached row',
    tests: ['test/connections/connection-changes.test.ts'],
  },
  {
    id: 'change-feed-dead',
    file: 'src/connections/connection-cache.ts',
    search: 'now - feed.lastSuccessfulPollStart < this.#feedStaleMs',
    replace: 'true',
    description: 'cached rows keep serving for minutes after the change feed stopped polling',
    tests: ['test/connections/connection-changes.test.ts'],
  },
  {
    id: 'user-isolation-cache',
    file: 'src/connections/connection-cache.ts',
    search: 'return row?.user_id === userId ? row : undefined;',
    replace: 'return row;',
    description: "the proxy and library hand out another user's connection (cache lookup)",
    tests: ['test/library/create-connections.test.ts'],
  },
  {
    id: 'user-isolation-repo',
    file: 'src/store/repos/connections.ts',
    search: "      .where('id', '=', id)\n      .where('user_id', '=', userId)\n      .executeTakeFirst();",
    replace: "      .where('id', '=', id)\n      .executeTakeFirst();",
    description: "the API shows and deletes another user's connection",
    tests: connectFlow,
  },
  {
    id: 'library-forced-refresh',
    file: 'src/index.ts',
    search: '{ force: true, rejectedToken: rejected.value }',
    replace: '{ rejectedToken: rejected.value }',
    description: 'refreshAfterUnauthorized returns the rejected token instead of refreshing',
    tests: ['test/library/create-connections.test.ts'],
  },
  {
    id: 'disconnect-revoke',
    file: 'src/connections/disconnect.ts',
    search: "if (refreshToken !== undefined) await client.revoke(refreshToken, 'refresh_token');",
    replace: 'if (refreshToken !== undefined) void client;',
    description: 'Disconnect records "revoked" but never revokes at the provider',
    tests: connectFlow,
  },
  {
    id: 'reconnect-write',
    file: 'src/connections/save-connection.ts',
    search: '.set({ ...values, version: existing.version + 1 })',
    replace: '.set({ updated_at: now, version: existing.version + 1 })',
    description: 'Reconnect keeps the old tokens (writes only its bookkeeping)',
    tests: connectFlow,
  },
  // --- notifications
  {
    id: 'sse-user-scope',
    file: 'src/notify/notifications.ts',
    search: "      .where('user_id', '=', userId)\n      .where('id', '>', afterId)",
    replace: "      .where('id', '>', afterId)",
    description: "the event stream sends other users' events",
    tests: ['test/http/events-resume.test.ts'],
  },
  {
    id: 'sse-resume',
    file: 'src/http/routes/notifications.ts',
    search: 'let cursor = lastEventId ?? (await',
    replace: 'let cursor = (await',
    description: 'Last-Event-ID is ignored: events missed while disconnected are lost',
    tests: ['test/http/events-resume.test.ts'],
  },
  {
    id: 'webhook-signature',
    file: 'src/notify/webhooks.ts',
    search: 'update(`${unixSeconds}.${body}`)',
    replace: 'update(body)',
    description: 'webhook signatures do not cover the timestamp (replayable)',
    tests: ['test/notify/webhook-retries.test.ts'],
  },
  {
    id: 'webhook-give-up',
    file: 'src/notify/webhooks.ts',
    search: "status: delivered ? 'delivered' : attempts >= maxWebhookAttempts ? 'failed' : 'pending',",
    replace: "status: delivered ? 'delivered' : 'pending',",
    description: 'a failing webhook is retried forever, never recorded as failed',
    tests: ['test/notify/webhook-retries.test.ts'],
  },
  {
    id: 'webhook-backoff',
    file: 'src/notify/webhooks.ts',
    search: '10_000 * 2 ** (attempt - 1)',
    replace: '10_000 * attempt',
    description: 'webhook retries back off linearly instead of doubling',
    tests: ['test/notify/webhook-retries.test.ts'],
  },
  // --- failure classification
  {
    id: 'aadsts-reauth-code',
    file: 'src/oauth/errors.ts',
    search: '50173, 50076, 50079',
    replace: '50173, 50079',
    description: 'AADSTS50076 (MFA required) is no longer a reauth',
    tests: ['test/oauth/failure-classifier.test.ts'],
  },
  {
    id: 'classifier-challenge',
    file: 'src/oauth/errors.ts',
    search: 'if (status === 401 || status === 403)',
    replace: 'if (status === 403)',
    description: 'a 401 WWW-Authenticate challenge is transient instead of a client (config) error',
    tests: ['test/oauth/failure-classifier.test.ts'],
  },
  // --- MCP servers
  {
    id: 'mcp-resource-match',
    file: 'src/oauth/mcp/discovery.ts',
    search: 'if (!resourceMatches(metadata.resource, serverUri)) {',
    replace: 'if (false && !resourceMatches(metadata.resource, serverUri)) {',
    description: 'a protected-resource metadata `resource` naming another server is accepted',
    tests: ['test/oauth/mcp-discovery.test.ts'],
  },
  {
    id: 'mcp-pkce-s256',
    file: 'src/oauth/providers/mcp.ts',
    search: "if (methods?.includes('S256') || setting === 'assume-s256') return;",
    replace: 'return;',
    description: 'an authorization server that does not list PKCE S256 is used anyway',
    tests: ['test/oauth/mcp-provider.test.ts'],
  },
  {
    id: 'mcp-elicitation-integration',
    file: 'src/http/routes/connect.ts',
    search: 'return found?.integrationId === integrationId ? found : undefined;',
    replace: 'return found;',
    description: "an elicitation link of one integration starts another integration's flow",
    tests: ['test/mcp/connect.test.ts'],
  },
  {
    id: 'issuer-pinned-refresh',
    file: 'src/connections/provider-refresh.ts',
    search: 'if (row.issuer !== null && row.issuer !== client.expectedIssuer) {',
    replace: 'if (false) {',
    description: 'a refresh token is sent to an authorization server that did not issue it',
    tests: ['test/lifecycle/issuer-pinned.test.ts'],
  },
  {
    id: 'issuer-pinned-revocation',
    file: 'src/connections/disconnect.ts',
    search: "if (row.issuer !== null && row.issuer !== client.expectedIssuer) return 'unsupported';",
    replace: '',
    description: 'Disconnect revokes tokens at an authorization server that did not issue them',
    tests: ['test/lifecycle/issuer-pinned.test.ts'],
  },
  // --- rate limits
  {
    id: 'rate-limit-address-after-identity',
    file: 'src/http/app.ts',
    search: `    const byAddress = rateLimits?.byAddress(request, reply);
    if (byAddress !== undefined) await byAddress;
    try {`,
    replace: '    try {',
    also: [
      {
        search: '    const byUser = rateLimits?.byUser(request, reply);',
        replace: `    const byAddress = rateLimits?.byAddress(request, reply);
    if (byAddress !== undefined) await byAddress;
    const byUser = rateLimits?.byUser(request, reply);`,
      },
    ],
    description: 'the per-address limit runs after identity: a flood of bad bearers costs a JWT check each',
    tests: ['test/http/rate-limits.test.ts'],
  },
  {
    id: 'rate-limit-per-user',
    file: 'src/http/app.ts',
    search: 'if (byUser !== undefined) await byUser;',
    replace: '',
    description: 'no per-user limit: one user spreads proxy and gateway calls over addresses unlimited',
    tests: ['test/http/rate-limits.test.ts', 'test/http/rate-limits-upstream.test.ts'],
  },
  {
    id: 'rate-limit-api-catch-all',
    file: 'src/http/rate-limits.ts',
    search: "if (url.startsWith('/api/')) return 'api';",
    replace: "if (url.startsWith('/api/')) return null;",
    description: 'an /api/v1 route added later escapes every limit',
    tests: ['test/http/rate-limits.test.ts'],
  },
];
