import { ProviderError } from './errors.js';
import type { OutboundFetch } from './outbound.js';
import type { ConnectionApiBase } from './templates/template.js';

/** A cloud id as Atlassian gives it (a UUID); anything else is refused rather than put in a URL. */
const cloudIdPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const maxResourcesBytes = 256 * 1024;

export interface ApiBaseInput {
  strategy: ConnectionApiBase;
  /** The token response as oauth4webapi validated it (Salesforce `instance_url` is a field of it). */
  response: Record<string, unknown>;
  accessToken: string;
  /** The integration's `api.baseUrl` (Atlassian: `https://api.atlassian.com/ex/jira`). */
  integrationBaseUrl: string | undefined;
  fetch: OutboundFetch;
  /** Plain http only where the outbound policy admits loopback (tests, demo). */
  allowHttp: boolean;
  timeoutMs: number;
}

/**
 * The API base URL of one connection, for providers whose API host differs per account: learnt
 * once at Connect (and Reconnect), stored on the connection, and used by the proxy instead of the
 * integration's `api.baseUrl`. Refuses (a `config_error`, naming no value) anything that is not a
 * plain http(s) origin-and-path URL on an allowed host; the proxy's outbound policy still guards
 * every request sent there.
 */
export async function connectionApiBaseUrl(input: ApiBaseInput): Promise<string> {
  const { strategy } = input;
  if (strategy.from === 'token_response') {
    const value = input.response[strategy.field];
    if (typeof value !== 'string') {
      throw new ProviderError('transient', `the token response has no ${strategy.field}`);
    }
    return checkedBase(value, strategy.hosts, input.allowHttp, strategy.field);
  }
  if (input.integrationBaseUrl === undefined) {
    throw new ProviderError('config_error', 'the integration needs api.baseUrl to append the site id to');
  }
  const cloudId = await firstSiteId(input, strategy.url);
  return `${input.integrationBaseUrl.replace(/\/+$/, '')}/${cloudId}`;
}

/** Whether `host` is one of `hosts` (exact, or `*.suffix` for any subdomain of suffix). */
export function hostAllowed(host: string, hosts: readonly string[]): boolean {
  const h = host.toLowerCase();
  return hosts.some((pattern) =>
    pattern.startsWith('*.') ? h.endsWith(pattern.slice(1)) && h.length > pattern.length - 1 : h === pattern,
  );
}

function checkedBase(value: string, hosts: readonly string[], allowHttp: boolean, field: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ProviderError('config_error', `the token response's ${field} is not a URL`);
  }
  const schemeOk = url.protocol === 'https:' || (url.protocol === 'http:' && allowHttp);
  if (!schemeOk || url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') {
    throw new ProviderError('config_error', `the token response's ${field} is not a plain https URL`);
  }
  if (!hostAllowed(url.hostname, hosts)) {
    throw new ProviderError(
      'config_error',
      `the token response's ${field} names a host outside connectionApiBase.hosts`,
    );
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

/**
 * The cloud id of the first site the token may use, from an Atlassian-style accessible-resources
 * list (`[{id, url, name, scopes}]`). @see https://developer.atlassian.com/cloud/jira/platform/oauth-2-3lo-apps/
 */
async function firstSiteId(input: ApiBaseInput, url: string): Promise<string> {
  const target = new URL(url);
  if (target.protocol !== 'https:' && !(target.protocol === 'http:' && input.allowHttp)) {
    throw new ProviderError('config_error', 'the accessible-resources URL must be https');
  }
  let response: Response;
  try {
    response = await input.fetch(target, {
      method: 'GET',
      headers: { authorization: `Bearer ${input.accessToken}`, accept: 'application/json' },
      signal: AbortSignal.timeout(input.timeoutMs),
    });
  } catch (cause) {
    throw new ProviderError('transient', 'the accessible-resources lookup failed', { cause });
  }
  if (response.status !== 200) {
    await response.body?.cancel().catch(() => {});
    const kind = response.status >= 500 || response.status === 429 ? 'transient' : 'config_error';
    throw new ProviderError(kind, `the accessible-resources lookup answered HTTP ${response.status}`, {
      status: response.status,
    });
  }
  const text = await response.text();
  if (text.length > maxResourcesBytes)
    throw new ProviderError('transient', 'the accessible-resources answer is too large');
  let sites: unknown;
  try {
    sites = JSON.parse(text);
  } catch {
    throw new ProviderError('transient', 'the accessible-resources answer is not JSON');
  }
  const first = Array.isArray(sites)
    ? sites.find((s): s is { id: string } => typeof s?.id === 'string' && cloudIdPattern.test(s.id))
    : undefined;
  if (first === undefined) {
    throw new ProviderError('invalid_request', 'the account granted this app no site');
  }
  return first.id.toLowerCase();
}
