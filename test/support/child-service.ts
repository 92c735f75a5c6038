/**
 * A service instance in its own process, for tests that must kill one mid-flight (SIGKILL: no
 * clean-up, no lease release). Run with `node --import tsx test/support/child-service.ts`:
 * `NUNQ_CHILD_CONFIG` holds the raw config as JSON, `NUNQ_CHILD_OPTIONS` optional
 * `{ leaseMs, background }`. Prints `LISTENING <url>` on stdout once it serves; logs go to stderr.
 */
import { validateConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/observability/logger.js';
import { createService } from '../../src/service/service.js';

const raw = process.env.NUNQ_CHILD_CONFIG;
if (raw === undefined) throw new Error('NUNQ_CHILD_CONFIG is not set');
const options = JSON.parse(process.env.NUNQ_CHILD_OPTIONS ?? '{}') as {
  leaseMs?: number;
  background?: boolean;
};
const service = await createService(validateConfig(JSON.parse(raw)), {
  logger: createLogger({ level: 'warn', destination: process.stderr }),
  background: options.background ?? false,
  ...(options.leaseMs === undefined ? {} : { leaseMs: options.leaseMs }),
});
const url = await service.listen();
process.stdout.write(`LISTENING ${url}\n`);
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    void service.close().finally(() => process.exit(0));
  });
}
