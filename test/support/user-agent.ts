/**
 * A scripted person with a browser, for integration tests without a real browser: a cookie jar per
 * origin, manual redirect following with a record of every URL visited, and form filling for the
 * sign-in pages of the test peers (oidc-provider's devInteractions and the Entra-shaped server).
 */

export interface UserAgentResponse {
  url: string;
  status: number;
  headers: Headers;
  body: string;
  /** The absolute redirect target of a 30x response. */
  location?: string;
}

export interface FollowOptions {
  /** At most this many redirects are followed (default 20). */
  maxHops?: number;
  /** A redirect to a URL for which this returns true is recorded but not requested. */
  stopAt?: (url: URL) => boolean;
}

export interface FollowResult {
  /** The last response received. */
  response: UserAgentResponse;
  /** Set when a redirect matched `stopAt`: the URL that was not requested. */
  stoppedAt?: URL;
}

export interface SignInOptions {
  /** Password typed into the oidc-provider login form (any value is accepted there). */
  password?: string;
  /** Follow the final redirect into the client too (default false: stop at its redirect_uri). */
  followIntoClient?: boolean;
  maxHops?: number;
}

interface StoredCookie {
  name: string;
  value: string;
  path: string;
  expiresAt?: number;
}

interface ParsedForm {
  action: string;
  method: string;
  fields: Record<string, string>;
}

export class UserAgent {
  /** Every URL requested, in order. */
  readonly visited: string[] = [];
  readonly #jar = new Map<string, StoredCookie[]>();
  readonly #fetch: typeof fetch;

  constructor(options: { fetch?: typeof fetch } = {}) {
    this.#fetch = options.fetch ?? globalThis.fetch;
  }

  get(url: string | URL): Promise<UserAgentResponse> {
    return this.#request('GET', new URL(url));
  }

  post(url: string | URL, form: Record<string, string>): Promise<UserAgentResponse> {
    return this.#request('POST', new URL(url), new URLSearchParams(form));
  }

  /** GETs `url` and follows 30x redirects (GET) until a non-redirect, `stopAt`, or `maxHops`. */
  async follow(url: string | URL, options: FollowOptions = {}): Promise<FollowResult> {
    return this.#followFrom(await this.get(url), options);
  }

  /** The cookies this agent would send to `url`, by name. */
  cookies(url: string | URL): Record<string, string> {
    const target = new URL(url);
    return Object.fromEntries(this.#cookiesFor(target).map((cookie) => [cookie.name, cookie.value]));
  }

  /**
   * Runs an authorization request at panva's oidc-provider through its devInteractions login and
   * consent pages; returns the redirect to the client's redirect_uri (with `code`, `state`, `iss`).
   */
  async signInAtOidcProvider(
    startUrl: string | URL,
    login: string,
    options: SignInOptions = {},
  ): Promise<URL> {
    const stopAt = this.#redirectUriMatcher(startUrl, options);
    const atProvider = providerMatcher(startUrl);
    let result = await this.follow(startUrl, { stopAt, maxHops: options.maxHops });
    for (let step = 0; step < 4 && atProvider(result); step += 1) {
      const form = parseForm(result.response);
      const prompt = form.fields.prompt;
      if (prompt === 'login') {
        form.fields.login = login;
        form.fields.password = options.password ?? 'demo';
      } else if (prompt !== 'consent') {
        throw unexpectedPage(result.response, 'an oidc-provider login or consent form');
      }
      result = await this.#submit(form, { stopAt, maxHops: options.maxHops });
    }
    return finalRedirect(result, options);
  }

  /** Runs an authorization request at the Entra-shaped test server through its sign-in form. */
  async signInAtEntra(startUrl: string | URL, login: string, options: SignInOptions = {}): Promise<URL> {
    const stopAt = this.#redirectUriMatcher(startUrl, options);
    const atProvider = providerMatcher(startUrl);
    let result = await this.follow(startUrl, { stopAt, maxHops: options.maxHops });
    if (atProvider(result)) {
      const form = parseForm(result.response);
      if (!('login' in form.fields)) throw unexpectedPage(result.response, 'the Entra sign-in form');
      form.fields.login = login;
      result = await this.#submit(form, { stopAt, maxHops: options.maxHops });
    }
    return finalRedirect(result, options);
  }

  /**
   * Connects as a person does: opens the confirmation page at `/connect/:integration` (with
   * `return_to` when given), clicks its Connect button (a form POST with the page's CSRF token)
   * and returns the provider's authorization URL the service redirects to.
   */
  async startConnect(serviceUrl: string, integration: string, returnTo?: string): Promise<URL> {
    const query = returnTo === undefined ? '' : `?return_to=${encodeURIComponent(returnTo)}`;
    const page = await this.get(`${serviceUrl}/connect/${integration}${query}`);
    if (page.status !== 200) throw unexpectedPage(page, 'the Connect confirmation page');
    const form = parseForm(page, (action) => action.pathname === `/connect/${integration}`);
    const answer = await this.post(form.action, form.fields);
    if (answer.status !== 303 || answer.location === undefined) {
      throw unexpectedPage(answer, "a redirect to the provider's sign-in");
    }
    return new URL(answer.location);
  }

  /**
   * Reconnects as a person does: clicks the Integrations page's Reconnect button of
   * `connectionId` (a form POST with the CSRF token); returns the provider's authorization URL.
   */
  async startReconnect(serviceUrl: string, connectionId: string): Promise<URL> {
    const page = await this.get(`${serviceUrl}/`);
    if (page.status !== 200) throw unexpectedPage(page, 'the Integrations page');
    const form = parseForm(page, (action) => action.pathname === `/connections/${connectionId}/reconnect`);
    const answer = await this.post(form.action, form.fields);
    if (answer.status !== 303 || answer.location === undefined) {
      throw unexpectedPage(answer, "a redirect to the provider's sign-in");
    }
    return new URL(answer.location);
  }

  /**
   * Answers the page a flow lands on when it finished in a browser that did not start it (one
   * started through the API): `callbackAnswer` is the callback's redirect to `/oauth/confirm/:id`;
   * opens that page and clicks Connect (or Cancel). Returns the POST's answer (a 303).
   */
  async answerParked(
    callbackAnswer: UserAgentResponse,
    decision: 'connect' | 'cancel' = 'connect',
  ): Promise<UserAgentResponse> {
    const target = callbackAnswer.location === undefined ? undefined : new URL(callbackAnswer.location);
    if (target === undefined || !target.pathname.startsWith('/oauth/confirm/')) {
      throw unexpectedPage(callbackAnswer, 'a redirect to the confirmation of a flow started elsewhere');
    }
    const page = await this.get(target);
    if (page.status !== 200) throw unexpectedPage(page, 'the confirmation of a flow started elsewhere');
    const form = parseForm(page, (action) => action.pathname === target.pathname);
    return this.post(form.action, { ...form.fields, decision });
  }

  /**
   * Presses a button of `page` as a person does: submits the first form whose absolute action
   * `accept`s, with its named inputs plus `fields` (e.g. the `decision` of the button pressed),
   * then follows redirects like `follow`.
   */
  submit(
    page: UserAgentResponse,
    accept: (action: URL) => boolean,
    fields: Record<string, string> = {},
    options: FollowOptions = {},
  ): Promise<FollowResult> {
    const form = parseForm(page, accept);
    return this.#submit({ ...form, fields: { ...form.fields, ...fields } }, options);
  }

  async #submit(form: ParsedForm, options: FollowOptions): Promise<FollowResult> {
    const response =
      form.method === 'get'
        ? await this.get(`${form.action}?${new URLSearchParams(form.fields)}`)
        : await this.post(form.action, form.fields);
    return this.#followFrom(response, options);
  }

  async #followFrom(first: UserAgentResponse, options: FollowOptions): Promise<FollowResult> {
    const maxHops = options.maxHops ?? 20;
    let response = first;
    for (let hop = 0; response.location !== undefined; hop += 1) {
      const next = new URL(response.location);
      if (options.stopAt?.(next)) {
        this.visited.push(next.href);
        return { response, stoppedAt: next };
      }
      if (hop >= maxHops)
        throw new Error(`more than ${maxHops} redirects, last to ${next.origin}${next.pathname}`);
      response = await this.get(next);
    }
    return { response };
  }

  async #request(method: string, url: URL, body?: URLSearchParams): Promise<UserAgentResponse> {
    this.visited.push(url.href);
    const headers = new Headers({ accept: 'text/html,application/json;q=0.9,*/*;q=0.8' });
    const cookie = this.#cookiesFor(url)
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
    if (cookie) headers.set('cookie', cookie);
    if (body) headers.set('content-type', 'application/x-www-form-urlencoded');
    const res = await this.#fetch(url, { method, headers, body, redirect: 'manual' });
    this.#store(url, res.headers.getSetCookie());
    const text = await res.text();
    const location = res.headers.get('location');
    const redirect = res.status >= 300 && res.status < 400 && location !== null;
    return {
      url: url.href,
      status: res.status,
      headers: res.headers,
      body: text,
      ...(redirect ? { location: new URL(location, url).href } : {}),
    };
  }

  #redirectUriMatcher(startUrl: string | URL, options: SignInOptions): ((url: URL) => boolean) | undefined {
    if (options.followIntoClient) return undefined;
    const redirectUri = new URL(startUrl).searchParams.get('redirect_uri');
    if (!redirectUri) throw new Error('the authorization URL has no redirect_uri');
    const target = new URL(redirectUri);
    return (url) => url.origin === target.origin && url.pathname === target.pathname;
  }

  #cookiesFor(url: URL): StoredCookie[] {
    const now = Date.now();
    const cookies = (this.#jar.get(url.origin) ?? []).filter(
      (c) => (c.expiresAt === undefined || c.expiresAt > now) && pathMatches(url.pathname, c.path),
    );
    // RFC 6265 §5.4: longer paths first.
    return cookies.sort((a, b) => b.path.length - a.path.length);
  }

  #store(url: URL, setCookies: string[]): void {
    if (setCookies.length === 0) return;
    const jar = this.#jar.get(url.origin) ?? [];
    for (const header of setCookies) {
      const cookie = parseSetCookie(header, url);
      if (!cookie) continue;
      const kept = jar.filter((c) => !(c.name === cookie.name && c.path === cookie.path));
      if (cookie.expiresAt === undefined || cookie.expiresAt > Date.now()) kept.push(cookie);
      jar.splice(0, jar.length, ...kept);
    }
    this.#jar.set(url.origin, jar);
  }
}

function parseSetCookie(header: string, url: URL): StoredCookie | undefined {
  const [pair = '', ...attributes] = header.split(';');
  const eq = pair.indexOf('=');
  if (eq <= 0) return undefined;
  const cookie: StoredCookie = {
    name: pair.slice(0, eq).trim(),
    value: pair.slice(eq + 1).trim(),
    path: defaultPath(url),
  };
  let maxAge: number | undefined;
  for (const attribute of attributes) {
    const [rawKey = '', ...rest] = attribute.split('=');
    const key = rawKey.trim().toLowerCase();
    const value = rest.join('=').trim();
    if (key === 'path' && value.startsWith('/')) cookie.path = value;
    else if (key === 'max-age' && /^-?\d+$/.test(value)) maxAge = Number(value);
    else if (key === 'expires') {
      const at = Date.parse(value);
      if (!Number.isNaN(at)) cookie.expiresAt = at;
    }
  }
  // Max-Age wins over Expires (RFC 6265 §5.3 step 3).
  if (maxAge !== undefined) cookie.expiresAt = Date.now() + maxAge * 1000;
  return cookie;
}

function defaultPath(url: URL): string {
  const slash = url.pathname.lastIndexOf('/');
  return slash <= 0 ? '/' : url.pathname.slice(0, slash);
}

function pathMatches(requestPath: string, cookiePath: string): boolean {
  if (requestPath === cookiePath) return true;
  if (!requestPath.startsWith(cookiePath)) return false;
  return cookiePath.endsWith('/') || requestPath.charAt(cookiePath.length) === '/';
}

/**
 * Reads the first form of an HTML page (or the first whose absolute action `accept`s): its
 * action (absolute), method and named inputs.
 */
function parseForm(page: UserAgentResponse, accept: (action: URL) => boolean = () => true): ParsedForm {
  const match = [...page.body.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)].find((m) =>
    accept(new URL(parseAttributes(m[1] ?? '').action ?? page.url, page.url)),
  );
  if (!match) throw unexpectedPage(page, 'a page with a form');
  const formAttributes = parseAttributes(match[1] ?? '');
  const fields: Record<string, string> = {};
  for (const input of (match[2] ?? '').matchAll(/<(?:input|button)\b([^>]*)>/gi)) {
    const attributes = parseAttributes(input[1] ?? '');
    if (attributes.name !== undefined) fields[attributes.name] = attributes.value ?? '';
  }
  return {
    action: new URL(formAttributes.action ?? page.url, page.url).href,
    method: (formAttributes.method ?? 'get').toLowerCase(),
    fields,
  };
}

function parseAttributes(source: string): Record<string, string> {
  const attributes: Record<string, string> = {};
  for (const m of source.matchAll(/([a-zA-Z_:][-a-zA-Z0-9_:.]*)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))/g)) {
    const name = m[1];
    if (name) attributes[name.toLowerCase()] = decodeEntities(m[2] ?? m[3] ?? m[4] ?? '');
  }
  return attributes;
}

function decodeEntities(text: string): string {
  return text
    .replace(/&#x([0-9a-f]+);/gi, (_, hex: string) => String.fromCodePoint(Number.parseInt(hex, 16)))
    .replace(/&#(\d+);/g, (_, dec: string) => String.fromCodePoint(Number(dec)))
    .replace(/&quot;/g, '"')
    .replace(/&#39;|&apos;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

/** True while a flow is still on the authorization server's pages (same origin as its start URL). */
function providerMatcher(startUrl: string | URL): (result: FollowResult) => boolean {
  const { origin } = new URL(startUrl);
  return (result) => !result.stoppedAt && new URL(result.response.url).origin === origin;
}

function finalRedirect(result: FollowResult, options: SignInOptions): URL {
  if (result.stoppedAt) return result.stoppedAt;
  if (options.followIntoClient) return new URL(result.response.url);
  if (result.response.location) return new URL(result.response.location);
  throw unexpectedPage(result.response, "a redirect to the client's redirect_uri");
}

function unexpectedPage(page: UserAgentResponse, expected: string): Error {
  const text = page.body
    .replace(/<style[\s\S]*?<\/style>|<script[\s\S]*?<\/script>/gi, '')
    .replace(/<[^>]+>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 300);
  return new Error(`expected ${expected} at ${page.url}, got HTTP ${page.status}: ${text}`);
}

/** A browser signed in to `svc` as `userId` (the platform's `/session?token=` hand-off). */
export async function signedInAgent(
  svc: { url: string; token(userId: string): Promise<string> },
  userId: string,
): Promise<UserAgent> {
  const ua = new UserAgent();
  const r = await ua.follow(`${svc.url}/session?token=${await svc.token(userId)}&return_to=/`, {
    maxHops: 1,
  });
  if (r.response.status !== 200) throw new Error(`session for ${userId}: HTTP ${r.response.status}`);
  return ua;
}
