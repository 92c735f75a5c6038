import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP } from 'node:net';
import type { Readable } from 'node:stream';
import ipaddr from 'ipaddr.js';
import { Agent, type Dispatcher, fetch as undiciFetch } from 'undici';
import { BufferedResponse } from './buffered-response.js';

/** An outbound request refused by policy (a private, loopback or link-local target not allowed). */
export class OutboundBlockedError extends Error {
  readonly code = 'outbound_blocked';
}

export type OutboundFetch = (input: string | URL, init?: OutboundInit) => Promise<Response>;

/**
 * `RequestInit`, plus `bodyTimeoutMs`: how long the response body may take in all, for a call
 * whose answer must be waited out (a token response the provider has already acted on).
 * Without it, the body may pause `timeoutMs` between chunks.
 */
export type OutboundInit = RequestInit & { bodyTimeoutMs?: number };

/**
 * `fetch` for answers that are small and read whole (token, revocation and registration
 * endpoints): undici's dispatcher `request`, the body read at once (at most 1 MiB) and handed
 * back as a Response. It costs a third of what undici's `fetch` does per call (no web-stream
 * body, no fetch controller), which a refresh storm feels: measured in bench/refresh.ts.
 */
const smallBodyLimitBytes = 1024 * 1024;

export interface OutboundPolicy {
  /** CIDRs of non-public targets that are allowed anyway (e.g. `127.0.0.1/32` in demo mode). */
  allow: readonly string[];
  timeoutMs: number;
}

type Cidr = [ipaddr.IPv4 | ipaddr.IPv6, number];

/**
 * Whether `address` may be contacted: public unicast addresses always, every other range
 * (loopback, private, link-local, unique-local, CGNAT, multicast, reserved, unspecified,
 * Teredo) only when an allow-list CIDR contains it. An IPv6 address that carries an IPv4
 * address (IPv4-compatible `::/96`, mapped `::ffff:0:0/96`, translated `::ffff:0:0:0/96`,
 * NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) is judged by that IPv4 address, unless an IPv6
 * allow-list entry names it. @see RFC 4291 §2.5.5, RFC 6052 §2.1, RFC 3056 §2
 */
export function isAddressAllowed(address: string, allow: readonly Cidr[]): boolean {
  let ip: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    ip = isIP(address) === 4 ? ipaddr.IPv4.parse(address) : ipaddr.IPv6.parse(address);
  } catch {
    return false;
  }
  if (listed(ip, allow)) return true;
  if (ip.kind() === 'ipv6') {
    const v4 = embeddedIPv4(ip as ipaddr.IPv6);
    if (v4 !== undefined) return v4.range() === 'unicast' || listed(v4, allow);
  }
  return ip.range() === 'unicast';
}

function listed(ip: ipaddr.IPv4 | ipaddr.IPv6, allow: readonly Cidr[]): boolean {
  return allow.some(([net, bits]) => net.kind() === ip.kind() && ip.match(net, bits));
}

/** The IPv4 address an IPv6 address carries by a fixed translation, if it carries one. */
export function embeddedIPv4(ip: ipaddr.IPv6): ipaddr.IPv4 | undefined {
  const p = ip.parts;
  const low32 = () => new ipaddr.IPv4([p[6]! >> 8, p[6]! & 0xff, p[7]! >> 8, p[7]! & 0xff]);
  const zero = (from: number, to: number) => p.slice(from, to).every((x) => x === 0);
  // ::/96 (compatible; `::` and `::1` carry 0.0.0.0 and 0.0.0.1, refused as such) and ::ffff:0:0/96 (mapped).
  if (zero(0, 5) && (p[5] === 0 || p[5] === 0xffff)) return low32();
  // ::ffff:0:0:0/96 (translated, RFC 6145) and 64:ff9b::/96 (NAT64 well-known prefix, RFC 6052).
  if (zero(0, 4) && p[4] === 0xffff && p[5] === 0) return low32();
  if (p[0] === 0x64 && p[1] === 0xff9b && zero(2, 6)) return low32();
  // 2002:AABB:CCDD::/48 (6to4): the IPv4 address follows the prefix.
  if (p[0] === 0x2002) return new ipaddr.IPv4([p[1]! >> 8, p[1]! & 0xff, p[2]! >> 8, p[2]! & 0xff]);
  return undefined;
}

/** Whether `address` is public: contactable without any allow-list entry. */
export function isPublicAddress(address: string): boolean {
  return isAddressAllowed(address, []);
}

/** Parses the `outbound.allow` CIDRs once. */
export function parseAllowList(allow: readonly string[]): Cidr[] {
  return allow.map((c) => ipaddr.parseCIDR(c));
}

/**
 * A fetch for every server-side request (discovery, token, revocation, proxy, webhooks) that
 * refuses non-public targets unless allowed: the check runs on every address DNS returns, at
 * connect time, so DNS rebinding cannot slip past it. Redirects are never followed
 * automatically, and every request has a timeout. @see OWASP SSRF Prevention Cheat Sheet
 */
export function createOutboundFetch(policy: OutboundPolicy): OutboundFetch {
  return createOutbound(policy).fetch;
}

/**
 * A streaming request (undici's dispatcher `request`: no body decoding, no redirects) under the
 * same policy; the proxy's transport. `path` (with query) is sent as given, under `origin`.
 */
export type OutboundRequest = (
  target: { origin: URL; path: string },
  options: {
    method: string;
    headers: Record<string, string>;
    body?: Buffer | Readable;
    /**
     * Limits for this request instead of the policy's `timeoutMs`: how long the response head
     * may take, and how long the body may pause (0: no limit, for streams whose end the caller
     * bounds, such as the MCP gateway's event streams).
     */
    timeouts?: { headersMs?: number; bodyIdleMs?: number };
  },
) => Promise<Dispatcher.ResponseData>;

/**
 * The transports over one guarded connection pool: `fetch` (a streaming body), `smallFetch`
 * and `request` (the proxy's).
 */
export function createOutbound(policy: OutboundPolicy): {
  fetch: OutboundFetch;
  smallFetch: OutboundFetch;
  request: OutboundRequest;
} {
  const allow = parseAllowList(policy.allow);
  // The verdict on a literal address never changes: remembered (bounded) so the proxy's hot path skips the parse.
  const literalVerdicts = new Map<string, boolean>();
  const literalAllowed = (hostname: string): boolean => {
    let verdict = literalVerdicts.get(hostname);
    if (verdict === undefined) {
      const host = hostname.replace(/^\[|\]$/g, '');
      verdict = isIP(host) === 0 || isAddressAllowed(host, allow);
      if (literalVerdicts.size >= 1_000) literalVerdicts.clear();
      literalVerdicts.set(hostname, verdict);
    }
    return verdict;
  };
  const checkTarget = (url: URL) => {
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw new OutboundBlockedError(`outbound request with scheme ${url.protocol} refused`);
    }
    if (!literalAllowed(url.hostname)) {
      throw new OutboundBlockedError(
        `outbound request to ${url.hostname.replace(/^\[|\]$/g, '')} refused by policy`,
      );
    }
  };
  const agent = new Agent({
    connect: {
      lookup(hostname, options, callback) {
        dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
          if (error) return callback(error, '', 4);
          const list = addresses as unknown as LookupAddress[];
          const refused = list.find((a) => !isAddressAllowed(a.address, allow));
          if (refused !== undefined || list.length === 0) {
            return callback(
              new OutboundBlockedError(`outbound request to ${hostname} refused by policy`),
              '',
              4,
            );
          }
          if ((options as { all?: boolean }).all)
            return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, list);
          return callback(null, list[0]!.address, list[0]!.family);
        });
      },
    },
    headersTimeout: policy.timeoutMs,
    bodyTimeout: policy.timeoutMs,
  });
  // The same pool, with the idle body timeout lifted; the caller's deadline bounds the body instead.
  const patientAgent = agent.compose(
    (dispatch) => (opts, handler) => dispatch({ ...opts, bodyTimeout: 0 }, handler),
  );
  const fetch: OutboundFetch = async (input, { bodyTimeoutMs, ...init } = {}) => {
    const url = new URL(String(input));
    checkTarget(url);
    const deadline = new Deadline(policy.timeoutMs, bodyTimeoutMs, init.signal);
    try {
      const response = await undiciFetch(url, {
        ...(init as Parameters<typeof undiciFetch>[1]),
        redirect: 'manual',
        signal: deadline.signal,
        dispatcher: bodyTimeoutMs === undefined ? agent : patientAgent,
      });
      deadline.headersArrived();
      return response as unknown as Response;
    } catch (error) {
      deadline.end();
      throw error;
    }
  };
  const smallFetch: OutboundFetch = async (input, { bodyTimeoutMs, ...init } = {}) => {
    const url = new URL(String(input));
    checkTarget(url);
    const deadline = new Deadline(policy.timeoutMs, bodyTimeoutMs, init.signal);
    try {
      const answer = await agent.request({
        origin: url.origin,
        path: `${url.pathname}${url.search}`,
        method: (init.method ?? 'GET') as Dispatcher.HttpMethod,
        headers: plainHeaders(init.headers),
        ...(init.body == null ? {} : { body: plainBody(init.body) }),
        signal: deadline.signal,
        ...(bodyTimeoutMs === undefined ? {} : { bodyTimeout: 0 }),
      });
      deadline.headersArrived();
      const body = await readWhole(answer.body, smallBodyLimitBytes);
      const headers: Array<[string, string]> = [];
      for (const [name, value] of Object.entries(answer.headers)) {
        if (Array.isArray(value)) for (const v of value) headers.push([name, v]);
        else if (value !== undefined) headers.push([name, value]);
      }
      const empty = answer.statusCode === 204 || answer.statusCode === 304;
      return new BufferedResponse(empty ? null : body, { status: answer.statusCode, headers });
    } finally {
      deadline.end();
    }
  };
  const request: OutboundRequest = async (target, options) => {
    checkTarget(target.origin);
    return agent.request({
      origin: target.origin,
      path: target.path,
      method: options.method as Dispatcher.HttpMethod,
      headers: options.headers,
      ...(options.body === undefined ? {} : { body: options.body }),
      ...(options.timeouts?.headersMs === undefined ? {} : { headersTimeout: options.timeouts.headersMs }),
      ...(options.timeouts?.bodyIdleMs === undefined ? {} : { bodyTimeout: options.timeouts.bodyIdleMs }),
    });
  };
  return { fetch, smallFetch, request };
}

/** Whether plain http may be used for this URL: only for targets that need an allow-list entry anyway. */
export function isLoopbackHttpAllowed(url: URL, policy: OutboundPolicy): boolean {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (url.protocol !== 'http:') return false;
  if (host === 'localhost') return isAddressAllowed('127.0.0.1', parseAllowList(policy.allow));
  return isIP(host) !== 0 && !isPublicAddress(host) && isAddressAllowed(host, parseAllowList(policy.allow));
}

/**
 * The time limits of one outbound call on a single AbortController: connecting and the response
 * head within `timeoutMs`; then, with `bodyTimeoutMs`, the whole answer within `timeoutMs +
 * bodyTimeoutMs` (without it the body is bounded by the agent's idle `bodyTimeout`). A caller's
 * own signal aborts it too. Cheaper than composing `AbortSignal.any` / `AbortSignal.timeout`,
 * which a hot path pays for on every call.
 */
class Deadline {
  readonly #controller = new AbortController();
  #headers: NodeJS.Timeout | undefined;
  #total: NodeJS.Timeout | undefined;
  readonly #caller: AbortSignal | null | undefined;
  readonly #onCallerAbort = () => this.#controller.abort(this.#caller?.reason);

  constructor(timeoutMs: number, bodyTimeoutMs: number | undefined, caller: AbortSignal | null | undefined) {
    const expire = () =>
      this.#controller.abort(new DOMException('outbound request timed out', 'TimeoutError'));
    this.#headers = setTimeout(expire, timeoutMs);
    // Unreferenced: a streamed answer read long ago must not keep the process alive.
    if (bodyTimeoutMs !== undefined) this.#total = setTimeout(expire, timeoutMs + bodyTimeoutMs).unref();
    this.#caller = caller;
    if (caller?.aborted) this.#onCallerAbort();
    else caller?.addEventListener('abort', this.#onCallerAbort, { once: true });
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** The head arrived: only the body's limit (if any) still runs. */
  headersArrived(): void {
    clearTimeout(this.#headers);
  }

  /** The call is over (answered in full, or failed): no limit runs any more. */
  end(): void {
    clearTimeout(this.#headers);
    clearTimeout(this.#total);
    this.#caller?.removeEventListener('abort', this.#onCallerAbort);
  }
}

function plainHeaders(headers: HeadersInit | undefined): Record<string, string> {
  if (headers === undefined) return {};
  if (headers instanceof Headers || Array.isArray(headers)) return Object.fromEntries(headers);
  return headers as Record<string, string>;
}

function plainBody(body: BodyInit): string | Uint8Array {
  if (typeof body === 'string' || body instanceof Uint8Array) return body;
  if (body instanceof URLSearchParams) return body.toString();
  throw new TypeError('smallFetch sends a string, URLSearchParams or bytes body only');
}

/** Reads a whole body, refusing one larger than `limit` bytes (the rest is not read). */
async function readWhole(body: Dispatcher.ResponseData['body'], limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      body.destroy();
      throw new Error(`response body larger than ${limit} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
}
