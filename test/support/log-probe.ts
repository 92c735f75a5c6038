/**
 * Writes `LINES` numbered log lines through the service's JSON destination on stdout, then ends
 * as `argv[2]` says: `exit` (process.exit at once), `return` (the event loop drains), `crash`
 * (an uncaught exception), `rejection` (an unhandled rejection). For the flush-on-exit tests.
 */
import { createLogDestination } from '../../src/observability/log-destination.js';
import { createLogger } from '../../src/observability/logger.js';

const mode = process.argv[2];
const lines = Number(process.env.LINES ?? '1000');
const destination = createLogDestination('json');
const logger = createLogger({ level: 'info', destination: destination.stream });
destination.install(logger);
for (let n = 1; n <= lines; n++) logger.info({ n }, 'line');
logger.info({ n: lines + 1 }, 'last line');
if (mode === 'exit') process.exit(3);
if (mode === 'crash')
  setImmediate(() => {
    throw new Error('probe crash');
  });
if (mode === 'rejection') void Promise.reject(new Error('probe rejection'));
