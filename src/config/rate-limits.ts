import { z } from 'zod';
import { boolean, integer } from './fields.js';

// The `rateLimits` section: requests per window, per user and per client address, for each
// category of route (docs/configuration.md#ratelimits). Enforced by src/http/rate-limits.ts.

/**
 * The route categories, each limited on its own. `pages` is every route the others do not name
 * (UI pages and their forms); health, metrics, the OpenAPI document, static assets and the
 * client metadata document are not limited at all.
 */
export const rateLimitCategories = [
  'signIn',
  'connect',
  'callback',
  'api',
  'proxy',
  'gateway',
  'pages',
] as const;
export type RateLimitCategory = (typeof rateLimitCategories)[number];

interface CategoryDefaults {
  windowSeconds: number;
  perUser: number;
  perAddress: number;
}

/**
 * Defaults a real deployment does not reach in normal use. Per address is sized for many users
 * behind one office NAT, and for the platform's backend, which calls the API, the proxy and the
 * gateway for all its users from a few addresses; per user for an agent making tens of calls
 * a second. Sign-in and the callback are a few requests per person and day: tight.
 */
export const rateLimitDefaults: Readonly<Record<RateLimitCategory, CategoryDefaults>> = {
  signIn: { windowSeconds: 60, perUser: 30, perAddress: 120 },
  connect: { windowSeconds: 60, perUser: 30, perAddress: 300 },
  callback: { windowSeconds: 60, perUser: 30, perAddress: 120 },
  api: { windowSeconds: 60, perUser: 1200, perAddress: 6000 },
  proxy: { windowSeconds: 10, perUser: 1000, perAddress: 10_000 },
  gateway: { windowSeconds: 10, perUser: 1000, perAddress: 10_000 },
  pages: { windowSeconds: 60, perUser: 600, perAddress: 3000 },
};

/** One category: a fixed window, and the requests a user and an address may make in it (0: no limit). */
const category = (d: CategoryDefaults) =>
  z
    .strictObject({
      enabled: boolean().default(true),
      windowSeconds: integer(1, 24 * 60 * 60).default(d.windowSeconds),
      perUser: integer(0).default(d.perUser),
      perAddress: integer(0).default(d.perAddress),
    })
    .prefault({});

export const rateLimitsSchema = z.strictObject({
  /** `false` turns every limit off (benchmarks; a front proxy that limits already). */
  enabled: boolean().default(true),
  signIn: category(rateLimitDefaults.signIn),
  connect: category(rateLimitDefaults.connect),
  callback: category(rateLimitDefaults.callback),
  api: category(rateLimitDefaults.api),
  proxy: category(rateLimitDefaults.proxy),
  gateway: category(rateLimitDefaults.gateway),
  pages: category(rateLimitDefaults.pages),
});

export type RateLimitsConfig = z.output<typeof rateLimitsSchema>;
export type RateLimitCategoryConfig = RateLimitsConfig[RateLimitCategory];
