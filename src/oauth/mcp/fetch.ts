import { isIP } from 'node:net';
import { isOutboundBlocked } from '../errors.js';
import {
  isAddressAllowed,
  isLoopbackHttpAllowed,
  type OutboundFetch,
  type OutboundInit,
  type OutboundPolicy,
  parseAllowList,
} from '../outbound.js';
import { McpDiscoveryError } from './errors.js';

/** Bounds on one request to a URL an MCP server (or its metadata) named. */
export interface FetchLimits {
  /** The largest response body accepted, in bytes; a bigger one is refused, not cut. */
  maxBodyBytes: number;
  /** Redirect hops followed; with 0 a redirect is returned as it came. */
  maxRedirects: number;
  /** Deadline of the whole request, redirects and body included; unset leaves it to the outbound policy. */
  timeoutMs?: number;
  /** `discard`: the body is never read (an MCP probe may answer with an endless event stream). */
  body?: 'read' | 'discard';
}

/** Limits for metadata documents: 256 KiB, 3 redirect hops. */
export const metadataLimits = { maxBodyBytes: 256 * 1024, maxRedirects: 3 } as const;

const redirectStatuses = new Set([301, 302, 303, 307, 308]);

/**
 * Refuses a URL before anything is sent to it: a scheme other than http(s), credentials in the
 * URL, plain http outside the networks the outbound policy allows, or a literal address the policy
 * refuses. DNS names are checked by the outbound fetch when it connects. `what` names the URL in
 * the error (e.g. "the token_endpoint of https://as.example").
 */
export function checkUrl(url: URL, policy: OutboundPolicy, what: string): void {
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new McpDiscoveryError('url_refused', `${what} (${url.href}) is not an http(s) URL`, { url });
  }
  if (url.username !== '' || url.password !== '') {
    throw new McpDiscoveryError('url_refused', `${what} carries credentials in the URL`, {
      url: url.origin,
    });
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (isIP(host) !== 0 && !isAddressAllowed(host, parseAllowList(policy.allow))) {
    throw new McpDiscoveryError(
      'address_refused',
      `${what} (${url.href}) points at ${host}, refused by policy`,
      {
        url,
      },
    );
  }
  if (url.protocol === 'http:' && !isLoopbackHttpAllowed(url, policy)) {
    throw new McpDiscoveryError('url_refused', `${what} (${url.href}) must use https`, { url });
  }
}

/**
 * The fetch for URLs an MCP server names (metadata, endpoints, registration): every hop checked
 * by {@link checkUrl} and sent through the SSRF-guarded outbound fetch, at most
 * `limits.maxRedirects` redirects followed by hand (a loop is refused), the body read whole up to
 * `limits.maxBodyBytes` and handed back buffered, all within `limits.timeoutMs`. Failures are
 * {@link McpDiscoveryError}s naming the URL.
 */
export function limitedFetch(
  deps: { fetch: OutboundFetch; policy: OutboundPolicy },
  limits: FetchLimits,
): OutboundFetch {
  return async (input, init = {}) => {
    const deadline = limits.timeoutMs === undefined ? undefined : AbortSignal.timeout(limits.timeoutMs);
    const signal = [init.signal, deadline].filter((s): s is AbortSignal => s != null);
    const request: OutboundInit = {
      ...init,
      ...(signal.length === 0 ? {} : { signal: signal.length === 1 ? signal[0] : AbortSignal.any(signal) }),
    };
    let url = new URL(String(input));
    const visited = new Set<string>();
    for (let hop = 0; ; hop++) {
      checkUrl(url, deps.policy, hop === 0 ? 'the URL' : 'the redirect target');
      visited.add(url.href);
      const response = await send(deps.fetch, url, request, deadline);
      const location = response.headers.get('location');
      if (!redirectStatuses.has(response.status) || location === null || limits.maxRedirects === 0) {
        return limits.body === 'discard' ? discard(response) : buffer(response, url, limits, deadline);
      }
      await response.body?.cancel().catch(() => {});
      let next: URL;
      try {
        next = new URL(location, url);
      } catch {
        throw new McpDiscoveryError('redirect_refused', `${url.href} redirects to an invalid URL`, { url });
      }
      if (visited.has(next.href)) {
        throw new McpDiscoveryError('redirect_refused', `${url.href} redirects in a loop`, { url });
      }
      if (hop + 1 > limits.maxRedirects) {
        throw new McpDiscoveryError(
          'redirect_refused',
          `${String(input)} redirects more than ${limits.maxRedirects} times`,
          { url: String(input) },
        );
      }
      // As browsers do: 303, and 301/302 after a POST, continue as a GET without a body.
      const method = (request.method ?? 'GET').toUpperCase();
      if (
        response.status === 303 ||
        (method === 'POST' && response.status !== 307 && response.status !== 308)
      ) {
        request.method = 'GET';
        delete request.body;
      }
      url = next;
    }
  };
}

async function send(
  fetch: OutboundFetch,
  url: URL,
  init: OutboundInit,
  deadline: AbortSignal | undefined,
): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (error) {
    throw failure(error, url, deadline);
  }
}

/** Maps a transport failure to a problem; a caller's own abort passes through unchanged. */
function failure(error: unknown, url: URL, deadline: AbortSignal | undefined): unknown {
  if (error instanceof McpDiscoveryError) return error;
  if (isOutboundBlocked(error)) {
    return new McpDiscoveryError('address_refused', `${url.href} resolves to an address refused by policy`, {
      url,
      cause: error,
    });
  }
  if (deadline?.aborted || (error instanceof Error && error.name === 'TimeoutError')) {
    return new McpDiscoveryError('timeout', `${url.href} did not answer in time`, { url, cause: error });
  }
  if (error instanceof Error && error.name === 'AbortError') return error;
  return new McpDiscoveryError('server_unreachable', `${url.href} could not be reached`, {
    url,
    cause: error,
  });
}

async function discard(response: Response): Promise<Response> {
  await response.body?.cancel().catch(() => {});
  return new Response(null, { status: response.status, headers: response.headers });
}

/** Reads the body whole, refusing it past `maxBodyBytes` (announced or actual). */
async function buffer(
  response: Response,
  url: URL,
  limits: FetchLimits,
  deadline: AbortSignal | undefined,
): Promise<Response> {
  const tooLarge = () =>
    new McpDiscoveryError(
      'response_too_large',
      `${url.href} answered more than ${limits.maxBodyBytes} bytes`,
      {
        url,
        status: response.status,
      },
    );
  const announced = Number(response.headers.get('content-length') ?? Number.NaN);
  if (announced > limits.maxBodyBytes) {
    await response.body?.cancel().catch(() => {});
    throw tooLarge();
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  if (response.body !== null) {
    const reader = response.body.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        total += value.byteLength;
        if (total > limits.maxBodyBytes) {
          await reader.cancel().catch(() => {});
          throw tooLarge();
        }
        chunks.push(value);
      }
    } catch (error) {
      throw failure(error, url, deadline);
    }
  }
  const nullBody = response.status === 204 || response.status === 205 || response.status === 304;
  return new Response(nullBody ? null : Buffer.concat(chunks), {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
  });
}
