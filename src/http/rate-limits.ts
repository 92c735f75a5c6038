import fastifyRateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type RateLimitCategory, type RateLimitsConfig, rateLimitCategories } from '../config/index.js';
import { callbackPath, parkedFlowPath } from '../connections/authorization-flow.js';
import type { Identity } from '../identity/identity.js';
import type { Metrics } from '../observability/metrics.js';
import { Problem } from './problem.js';

/**
 * Rate limits (config `rateLimits`, docs/configuration.md#ratelimits): each route falls in one
 * category by its URL (`categoryOf`), and each category counts requests per client address and
 * per signed-in user in fixed windows, with @fastify/rate-limit's in-memory LRU store (per
 * instance, no database). Over a limit: 429 problem+json with `Retry-After`.
 */

declare module 'fastify' {
  interface FastifyRequest {
    /** This request's rate-limit category (null: not limited), once the first check found it. */
    rateLimitCategory: RateLimitCategory | null | undefined;
  }
}

/** Routes never limited: cheap, polled by machines (load balancers, Prometheus) or static. */
const unlimitedRoutes = new Set([
  '/healthz',
  '/metrics',
  '/api/v1/openapi.json',
  '/api/v1/docs',
  '/oauth/client-metadata.json',
]);

/**
 * The category of a route, by its method and Fastify URL template (`request.routeOptions.url`);
 * null: not limited. One table, so a new route cannot escape: any other `/api/` route is `api`,
 * anything else (UI pages, their forms, and requests no route matched) is `pages`.
 */
export function categoryOf(method: string, url: string | undefined): RateLimitCategory | null {
  if (url === undefined) return 'pages';
  if (unlimitedRoutes.has(url) || url.startsWith('/assets/')) return null;
  if (url === '/session' || (url === '/dev/login' && method === 'POST')) return 'signIn';
  if (
    url === '/connect/:integrationId' ||
    url === '/connections/:id/reconnect' ||
    url === '/api/v1/connections/:id/reconnect' ||
    (url === '/api/v1/connections' && method === 'POST')
  )
    return 'connect';
  // The callback, and the questions a finished flow may ask before it saves (account, browser).
  if (
    url === callbackPath ||
    url.startsWith(`${parkedFlowPath}/`) ||
    url === '/connections/:id/confirm/:confirmationId'
  )
    return 'callback';
  if (url === '/api/v1/connections/:id/proxy' || url.startsWith('/api/v1/connections/:id/proxy/'))
    return 'proxy';
  if (url === '/mcp' || url.startsWith('/mcp/')) return 'gateway';
  if (url.startsWith('/api/')) return 'api';
  return 'pages';
}

/** How a 429's detail names a category: "Too many proxy requests for this user". */
const categoryWords: Record<RateLimitCategory, string> = {
  signIn: 'sign-in',
  connect: 'Connect',
  callback: 'sign-in callback',
  api: 'API',
  proxy: 'proxy',
  gateway: 'MCP gateway',
  pages: 'page',
};

export type Counted = 'user' | 'address';
type Limiter = ReturnType<FastifyInstance['createRateLimit']>;
type LimiterOptions = NonNullable<Parameters<FastifyInstance['createRateLimit']>[0]>;

/** Keys per limiter kept in memory (LRU); past it the least recently seen key starts over. */
const keysPerLimiter = 10_000;

/**
 * The two checks the app runs on each request. Each returns undefined when no limit applies
 * (nothing to await on the hot path), else a promise that rejects with a 429 Problem.
 */
export interface RateLimits {
  /** Per client address (`request.ip`, so `server.trustProxy` applies); runs before identity. */
  byAddress(request: FastifyRequest, reply: FastifyReply): Promise<void> | undefined;
  /** Per user (`request.identity`); runs after identity, and only for a signed-in caller. */
  byUser(request: FastifyRequest, reply: FastifyReply): Promise<void> | undefined;
  /** The same checks for a request answered outside Fastify (`fast-routes.ts`), by route URL. */
  check(category: RateLimitCategory | null, by: Counted, subject: LimitSubject): Promise<void> | undefined;
}

/**
 * Who a request outside Fastify is counted as: the client address as `request.ip` would give it,
 * and the verified caller. The limiters read `ip`, `identity` and `routeOptions.config` (empty
 * here: no route groups) of what they are given, so this stands in for a FastifyRequest.
 */
export interface LimitSubject {
  ip: string;
  identity: Identity | undefined;
  routeOptions: { config: Record<string, never> };
}

/**
 * Registers @fastify/rate-limit (no route limited by itself: `global: false`) and builds one
 * limiter per category and dimension with `createRateLimit`. Not `app.rateLimit()` hooks: the
 * plugin marks a request as limited after the first of them, so a second (per user after per
 * address) would never count. Undefined when every limit is off.
 */
export async function registerRateLimits(
  app: FastifyInstance,
  config: RateLimitsConfig,
  metrics: Metrics,
): Promise<RateLimits | undefined> {
  if (!config.enabled) return undefined;
  const active = rateLimitCategories.filter(
    (c) => config[c].enabled && (config[c].perUser > 0 || config[c].perAddress > 0),
  );
  if (active.length === 0) return undefined;
  await app.register(fastifyRateLimit, { global: false });

  const build = (category: RateLimitCategory, by: Counted): Limiter | undefined => {
    const { windowSeconds, perUser, perAddress } = config[category];
    const max = by === 'user' ? perUser : perAddress;
    if (max === 0) return undefined;
    // `cache` (the LRU's size) is a route option of the plugin that createRateLimit passes on
    // to its store, though its types leave it out.
    const options: LimiterOptions & { cache: number } = {
      max,
      timeWindow: windowSeconds * 1000,
      cache: keysPerLimiter,
    };
    // The default key is `request.ip` (IPv6 by /64); per user, the verified user id.
    if (by === 'user') options.keyGenerator = (request) => request.identity?.userId ?? '';
    return app.createRateLimit(options);
  };
  const limiters = new Map<RateLimitCategory, Record<Counted, Limiter | undefined>>();
  for (const category of active) {
    limiters.set(category, { user: build(category, 'user'), address: build(category, 'address') });
  }

  const categories = new Map<string, RateLimitCategory | null>();
  // Found once per request (by the per-address check) and kept on it for the per-user check.
  app.decorateRequest('rateLimitCategory', undefined);
  const categoryFor = (request: FastifyRequest): RateLimitCategory | null => {
    if (request.rateLimitCategory !== undefined) return request.rateLimitCategory;
    const url = request.routeOptions.url;
    const key = `${request.method} ${url}`;
    let category = categories.get(key);
    if (category === undefined) {
      category = categoryOf(request.method, url);
      categories.set(key, category);
    }
    request.rateLimitCategory = category;
    return category;
  };

  const enforce = async (
    limiter: Limiter,
    category: RateLimitCategory,
    by: Counted,
    subject: FastifyRequest | LimitSubject,
  ): Promise<void> => {
    const result = await limiter(subject as FastifyRequest);
    if (result.isAllowed || !result.isExceeded) return;
    metrics.rateLimited.inc({ category, by });
    const seconds = Math.max(1, result.ttlInSeconds);
    const who = by === 'user' ? 'for this user' : 'from this address';
    const problem = new Problem(
      429,
      'rate_limited',
      'Too Many Requests',
      `Too many ${categoryWords[category]} requests ${who}; retry after ${seconds} s.`,
      { retryAfterSeconds: seconds },
    );
    // Only on our own 429: a proxied answer keeps the upstream's RateLimit fields, never ours.
    problem.headers['ratelimit-limit'] = String(result.max);
    problem.headers['ratelimit-remaining'] = '0';
    problem.headers['ratelimit-reset'] = String(seconds);
    throw problem;
  };

  const check = (
    category: RateLimitCategory | null,
    by: Counted,
    subject: FastifyRequest | LimitSubject,
  ): Promise<void> | undefined => {
    if (category === null || (by === 'user' && subject.identity === undefined)) return undefined;
    const limiter = limiters.get(category)?.[by];
    return limiter === undefined ? undefined : enforce(limiter, category, by, subject);
  };
  const checkRequest = (by: Counted) => (request: FastifyRequest) =>
    by === 'user' && request.identity === undefined ? undefined : check(categoryFor(request), by, request);
  return { byAddress: checkRequest('address'), byUser: checkRequest('user'), check };
}
