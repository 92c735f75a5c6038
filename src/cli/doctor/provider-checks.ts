import * as oauth from 'oauth4webapi';
import type { Config, McpServerConfig, ProviderConfig } from '../../config/index.js';
import { isOutboundBlocked } from '../../oauth/errors.js';
import { discoverMcpAuthorization } from '../../oauth/mcp/discovery.js';
import { McpDiscoveryError } from '../../oauth/mcp/errors.js';
import { isLoopbackHttpAllowed, type OutboundFetch, type OutboundPolicy } from '../../oauth/outbound.js';
import type { ClockSample } from './clock.js';
import { type CheckResult, fail, ok, warn } from './report.js';
import { describeError, withDeadline } from './support.js';

export interface NetworkDeps {
  /** The SSRF-guarded outbound fetch the service uses, built from the config's `outbound`. */
  fetch: OutboundFetch;
  policy: OutboundPolicy;
  now: () => number;
}

/**
 * Reaches every configured provider and MCP server, all at once, through the outbound fetch:
 * OIDC issuer metadata, Entra tenant metadata, oauth2 endpoints (any HTTP answer counts as
 * reachable), MCP discovery. Each check is bounded by the outbound timeout (MCP discovery, which
 * follows several documents, by three times it). Returns the `Date` headers seen for the clock check.
 */
export async function checkProviders(
  config: Pick<Config, 'providers' | 'mcpServers'>,
  deps: NetworkDeps,
  /** After each check's name: where the entries come from (run-time ones: ` (console)`). */
  from = '',
): Promise<{ results: CheckResult[]; samples: ClockSample[] }> {
  const samples: ClockSample[] = [];
  const recording = (source: string): OutboundFetch => {
    return async (input, init) => {
      const sentAt = deps.now();
      const response = await deps.fetch(input, init);
      const date = response.headers.get('date');
      if (date !== null) samples.push({ source, date, sentAt, receivedAt: deps.now() });
      return response;
    };
  };
  const deadline = deps.policy.timeoutMs * 3 + 1_000;
  const bounded = (check: string, run: Promise<CheckResult>): Promise<CheckResult> =>
    withDeadline(run, deadline, `no answer within ${deadline} ms`).catch((error: unknown) =>
      fail(check, unreachable(error, deps.policy)),
    );
  const results = await Promise.all([
    ...config.providers.map((p) =>
      bounded(`provider:${p.id}`, checkProvider(p, { ...deps, fetch: recording(`provider ${p.id}`) })),
    ),
    ...config.mcpServers.map((s) =>
      bounded(`mcp:${s.id}`, checkMcpServer(s, { ...deps, fetch: recording(`MCP server ${s.id}`) })),
    ),
  ]);
  if (from !== '') for (const r of results) r.check = `${r.check}${from}`;
  return { results, samples };
}

async function checkProvider(provider: ProviderConfig, deps: NetworkDeps): Promise<CheckResult> {
  const check = `provider:${provider.id}`;
  const plain = plainHttp(provider, deps.policy);
  if (plain !== undefined) {
    return fail(
      check,
      `${plain} is plain http, which the service uses only for loopback and private addresses listed in outbound.allow: use https, or list the address there`,
    );
  }
  const started = deps.now();
  const took = () => `${deps.now() - started} ms`;
  switch (provider.type) {
    case 'oidc': {
      const issuer = new URL(provider.issuer);
      const response = await oauth.discoveryRequest(issuer, {
        [oauth.customFetch]: deps.fetch as typeof globalThis.fetch,
        [oauth.allowInsecureRequests]: isLoopbackHttpAllowed(issuer, deps.policy),
      });
      try {
        const as = await oauth.processDiscoveryResponse(issuer, response);
        return ok(
          check,
          `OIDC discovery for ${provider.issuer} answered in ${took()}, issuer matches, token endpoint ${as.token_endpoint ?? '(none)'}`,
        );
      } catch (error) {
        return fail(
          check,
          `OIDC discovery for ${provider.issuer} failed (HTTP ${response.status}: ${describeError(error)}): check providers.issuer; it must be the exact issuer the provider publishes`,
        );
      }
    }
    case 'entra': {
      const authority = provider.authority.replace(/\/+$/, '');
      const url = `${authority}/${encodeURIComponent(provider.tenant)}/v2.0/.well-known/openid-configuration`;
      const response = await deps.fetch(url, { headers: { accept: 'application/json' } });
      const body = response.ok ? await response.json().catch(() => undefined) : undefined;
      await response.body?.cancel().catch(() => {});
      const fine =
        typeof body === 'object' &&
        body !== null &&
        typeof (body as Record<string, unknown>).token_endpoint === 'string' &&
        typeof (body as Record<string, unknown>).authorization_endpoint === 'string';
      return fine
        ? ok(check, `Entra tenant metadata for "${provider.tenant}" at ${authority} answered in ${took()}`)
        : fail(
            check,
            `Entra tenant metadata at ${url} answered HTTP ${response.status} without usable endpoints: check providers.tenant (a tenant id, a verified domain, common, organizations or consumers) and providers.authority`,
          );
    }
    case 'oauth2': {
      const endpoints = [
        ['authorizationEndpoint', provider.authorizationEndpoint],
        ['tokenEndpoint', provider.tokenEndpoint],
      ] as const;
      const answers = await Promise.all(endpoints.map(([, url]) => reach(url, deps.fetch)));
      const bad = answers
        .map((status, i) => ({ status, field: endpoints[i]![0] }))
        .filter((a) => a.status >= 500);
      if (bad.length > 0) {
        return warn(
          check,
          `reachable, but ${bad.map((b) => `${b.field} answered HTTP ${b.status}`).join(', ')}: the provider may be having trouble`,
        );
      }
      return ok(check, `authorization and token endpoints answer (HTTP ${answers.join(', ')}) in ${took()}`);
    }
  }
}

/** The first of the provider's URLs that is plain http where the service would refuse it. */
function plainHttp(provider: ProviderConfig, policy: OutboundPolicy): string | undefined {
  const urls =
    provider.type === 'oidc'
      ? [provider.issuer]
      : provider.type === 'entra'
        ? [provider.authority]
        : [provider.authorizationEndpoint, provider.tokenEndpoint];
  return urls.find((u) => {
    const url = new URL(u);
    return url.protocol === 'http:' && !isLoopbackHttpAllowed(url, policy);
  });
}

/** A HEAD, or a GET where HEAD is not allowed; any HTTP answer means the endpoint is reachable. */
async function reach(url: string, fetch: OutboundFetch): Promise<number> {
  let response = await fetch(url, { method: 'HEAD' });
  await response.body?.cancel().catch(() => {});
  if (response.status === 405 || response.status === 501) {
    response = await fetch(url, { method: 'GET' });
    await response.body?.cancel().catch(() => {});
  }
  return response.status;
}

async function checkMcpServer(server: McpServerConfig, deps: NetworkDeps): Promise<CheckResult> {
  const check = `mcp:${server.id}`;
  try {
    const found = await discoverMcpAuthorization(new URL(server.url), {
      fetch: deps.fetch,
      policy: deps.policy,
    });
    const registration =
      server.clientId !== undefined
        ? 'a configured client'
        : found.authorizationServer.registration_endpoint !== undefined
          ? 'dynamic registration available'
          : found.authorizationServer.client_id_metadata_document_supported === true
            ? 'Client ID Metadata Documents supported'
            : 'no registration endpoint';
    return ok(
      check,
      `discovery found authorization server ${found.authorizationServer.issuer} for resource ${found.resource}${found.legacy ? ' (legacy server without resource metadata)' : ''}; ${registration}`,
    );
  } catch (error) {
    if (error instanceof McpDiscoveryError) {
      return fail(
        check,
        `${error.problem}: ${error.message}: check mcpServers url, the server, and outbound.allow`,
      );
    }
    throw error;
  }
}

/** Why a provider could not be reached, and what to do. */
function unreachable(error: unknown, policy: OutboundPolicy): string {
  if (isOutboundBlocked(error)) {
    return `${describeError(error)}: a private or loopback address is reached only when outbound.allow lists it`;
  }
  const text = describeError(error);
  if (/timed? ?out|TimeoutError|no answer within/i.test(text)) {
    return `no answer within the outbound timeout (${policy.timeoutMs} ms): ${text}; check the URL, DNS, firewalls and proxies between here and the provider`;
  }
  return `unreachable (${text}): check the URL, DNS, firewalls and proxies between here and the provider`;
}
