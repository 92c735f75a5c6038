import type { HTTPMethods } from 'fastify';

/**
 * Which methods each route path answers, learnt from Fastify's `onRoute` hook, so a request with
 * another method on a known path gets 405 with `Allow` instead of 404. @see RFC 9110 §15.5.6
 */
export class RouteMethods {
  readonly #routes: Array<{ pattern: RegExp; methods: Set<string> }> = [];

  /** Records a route as Fastify declares it (`:param` and `*` segments understood). */
  add(url: string, method: HTTPMethods | HTTPMethods[]): void {
    const pattern = patternFor(url);
    let route = this.#routes.find((r) => r.pattern.source === pattern.source);
    if (route === undefined) {
      route = { pattern, methods: new Set() };
      this.#routes.push(route);
    }
    for (const m of Array.isArray(method) ? method : [method]) route.methods.add(m.toUpperCase());
    if (route.methods.has('GET')) route.methods.add('HEAD');
  }

  /** The methods some route answers at `path`, sorted; empty when no route matches the path. */
  allowedFor(path: string): string[] {
    const methods = new Set<string>();
    for (const route of this.#routes) {
      if (route.pattern.test(path)) for (const m of route.methods) methods.add(m);
    }
    return [...methods].sort();
  }
}

function patternFor(url: string): RegExp {
  const parts = url.split('/').map((segment) => {
    if (segment === '*') return '.*';
    if (segment.startsWith(':') && !segment.startsWith('::')) return '[^/]+';
    return segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  });
  return new RegExp(`^${parts.join('/')}$`);
}
