import type { RouteOptions } from 'fastify';
import { type RouteSpec, specOf } from './route-spec.js';

/** One route as Fastify registered it, with its spec when it was registered with `documented`. */
export interface RegisteredRoute {
  method: string;
  url: string;
  spec: RouteSpec | undefined;
}

/**
 * Every route the application registered (fed by the `onRoute` hook), one entry per method:
 * the OpenAPI document is built from the documented ones, and the route test compares the two.
 */
export class RouteTable {
  readonly #routes: RegisteredRoute[] = [];

  add(route: RouteOptions): void {
    const spec = specOf(route);
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    if (spec !== undefined) assertMatches(spec, route.url, methods);
    for (const method of methods) this.#routes.push({ method: method.toUpperCase(), url: route.url, spec });
  }

  /** Every registered route, in the order of registration. */
  all(): readonly RegisteredRoute[] {
    return this.#routes;
  }

  /** The distinct specs, in the order of registration. */
  specs(): RouteSpec[] {
    return [...new Set(this.#routes.flatMap((r) => (r.spec === undefined ? [] : [r.spec])))];
  }
}

/** A spec registered on another path or method than its own is a programming error: fail at start. */
function assertMatches(spec: RouteSpec, url: string, methods: readonly string[]): void {
  const declared = (Array.isArray(spec.method) ? spec.method : [spec.method]).map((m) => m.toUpperCase());
  // Fastify adds HEAD to every GET with the GET's options.
  const allowed = declared.includes('GET') ? [...declared, 'HEAD'] : declared;
  const stray = methods.filter((m) => !allowed.includes(m.toUpperCase()));
  if (spec.url !== url || stray.length > 0) {
    throw new Error(
      `route ${methods.join(',')} ${url} is registered with the spec of ${declared.join(',')} ${spec.url} (${spec.operationId})`,
    );
  }
}
