import type { FastifyInstance } from 'fastify';

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
