import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { TestService } from './service.js';

/** Headers that differ between any two answers of a server (time, connection handling). */
const perAnswer = new Set(['date', 'connection', 'keep-alive', 'transfer-encoding']);

/** An answer as the fast-path tests compare them: status, headers that say something, body. */
export interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** An answer's headers without those that differ between any two answers. */
export function comparable(headers: IncomingHttpHeaders | Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || perAnswer.has(name)) continue;
    out[name] = Array.isArray(value) ? value.join(', ') : String(value);
  }
  return out;
}

/** Counts the requests the app's fast routes answered (`src/http/fast-routes.ts`), since the last `reset`. */
export interface FastRouteCounter {
  readonly taken: number;
  reset(): void;
}

/** Wraps `app.fastRoutes.handle` so a test can tell which requests went the fast way. */
export function countFastRoutes(app: FastifyInstance): FastRouteCounter {
  let taken = 0;
  const handle = app.fastRoutes.handle.bind(app.fastRoutes);
  app.fastRoutes.handle = (request, response) => {
    const took = handle(request, response);
    if (took) taken++;
    return took;
  };
  return {
    get taken() {
      return taken;
    },
    reset() {
      taken = 0;
    },
  };
}

/** The request metric's count for one label set (`method="GET",route="…",status="200"`), scraped as an admin. */
export async function requestsCounted(svc: TestService, label: string): Promise<number> {
  const admin = { headers: { authorization: `Bearer ${await svc.token('root', 'admin')}` } };
  const text = await (await fetch(`${svc.url}/metrics`, admin)).text();
  const prefix = `nunq_http_request_duration_seconds_count{${label}} `;
  const line = text.split('\n').find((l) => l.startsWith(prefix));
  return line === undefined ? 0 : Number(line.slice(prefix.length));
}
