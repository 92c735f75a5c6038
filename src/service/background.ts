import type { Logger } from '../observability/logger.js';

export interface BackgroundTask {
  name: string;
  everyMs: number;
  /** `signal` aborts when the service stops: a long run should stop taking new work. */
  run(signal: AbortSignal): Promise<unknown>;
}

/**
 * Runs periodic tasks (webhook delivery, housekeeping) without overlap: each task waits for its
 * previous run. Every instance runs them; the tasks coordinate through the database (leases).
 */
export function startBackground(tasks: BackgroundTask[], logger: Logger): { stop(): Promise<void> } {
  let stopped = false;
  const stopping = new AbortController();
  const running = new Set<Promise<unknown>>();
  const timers = tasks.map((task) => {
    const tick = async () => {
      if (stopped) return;
      const p = task
        .run(stopping.signal)
        .catch((error: unknown) => logger.error({ err: error, task: task.name }, 'background task failed'));
      running.add(p);
      await p;
      running.delete(p);
      if (!stopped) timer.ref = setTimeout(tick, task.everyMs).unref();
    };
    const timer: { ref: NodeJS.Timeout } = { ref: setTimeout(tick, Math.min(task.everyMs, 250)).unref() };
    return timer;
  });
  return {
    async stop() {
      stopped = true;
      stopping.abort();
      for (const t of timers) clearTimeout(t.ref);
      await Promise.all(running);
    },
  };
}
