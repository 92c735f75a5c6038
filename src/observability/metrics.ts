import { Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client';

/** The service's Prometheus metrics, one registry per service instance (tests run several). */
export interface Metrics {
  readonly registry: Registry;
  readonly httpRequests: Histogram<'method' | 'route' | 'status'>;
  readonly decryptFailures: Counter<'table'>;
  readonly tokenRequests: Counter<'provider' | 'grant' | 'outcome'>;
  /** Requests refused with 429 by a rate limit: `category` of route, `by` user or address. */
  readonly rateLimited: Counter<'category' | 'by'>;
}

/** Creates the registry with process metrics and the service's own. */
export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'nunq_' });
  return {
    registry,
    httpRequests: new Histogram({
      name: 'nunq_http_request_duration_seconds',
      help: 'HTTP request duration by route and status',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers: [registry],
    }),
    decryptFailures: new Counter({
      name: 'nunq_decrypt_failures_total',
      help: 'Sealed values that failed to open (tampered, moved or under an unknown key)',
      labelNames: ['table'],
      registers: [registry],
    }),
    tokenRequests: new Counter({
      name: 'nunq_token_requests_total',
      help: 'Token endpoint requests by provider, grant type and outcome',
      labelNames: ['provider', 'grant', 'outcome'],
      registers: [registry],
    }),
    rateLimited: new Counter({
      name: 'nunq_rate_limited_total',
      help: 'Requests refused with 429 by a rate limit, by route category and by what was counted (user or address)',
      labelNames: ['category', 'by'],
      registers: [registry],
    }),
  };
}
