import pino from 'pino';
import pinoPretty from 'pino-pretty';
import type { Logger } from './logger.js';

/** `json`: one JSON object per line (for a pipe, a file, a log shipper); `pretty`: for a person. */
export type LogFormat = 'json' | 'pretty';

/**
 * Pretty for a person at a terminal, JSON lines for everything else; `LOG_FORMAT=json|pretty`
 * overrides. Never both: one process writes one format to its stdout.
 */
export function chooseLogFormat(stdoutIsTTY: boolean, env: Record<string, string | undefined>): LogFormat {
  if (env.LOG_FORMAT === 'json' || env.LOG_FORMAT === 'pretty') return env.LOG_FORMAT;
  return stdoutIsTTY ? 'pretty' : 'json';
}

/** Bytes buffered before a write: under load one write per ~14 access lines instead of one per line. */
const bufferBytes = 4096;
/** What an idle service may hold back: a buffered line is written at most this late. */
const flushEveryMs = 250;

/** A destination with `flushSync`, what the exit and crash hooks need. */
interface Flushable extends pino.DestinationStream {
  flushSync(): void;
}

/**
 * The service's log destination on `fd` (stdout): asynchronous and buffered for JSON, so a
 * request never waits on the pipe, with everything written out on exit, on a crash and at least
 * every 250 ms; synchronous pino-pretty for a terminal. `install` hooks the process (once per
 * logger): call it with the logger, and `uninstall` when the logger is done.
 */
export function createLogDestination(
  format: LogFormat,
  fd = 1,
): { stream: pino.DestinationStream; install(logger: Logger): void; uninstall(): void } {
  if (format === 'pretty') {
    const stream = pinoPretty({
      destination: fd,
      sync: true,
      colorize: true,
      translateTime: 'SYS:HH:MM:ss.l',
      ignore: 'pid,hostname',
    });
    return { stream, install() {}, uninstall() {} };
  }
  const stream = pino.destination({ dest: fd, sync: false, minLength: bufferBytes }) as Flushable;
  const flushQuietly = () => {
    try {
      stream.flushSync();
    } catch {
      // A closed or broken stdout: nothing left to write to.
    }
  };
  let timer: NodeJS.Timeout | undefined;
  let onCrash: ((error: Error, origin: string) => void) | undefined;
  return {
    stream,
    install(logger) {
      timer = setInterval(() => {
        // `_len`: what SonicBoom holds unwritten (no public accessor); an empty flush would still write.
        if ((stream as unknown as { _len?: number })._len === 0) return;
        try {
          (stream as unknown as { flush(): void }).flush();
        } catch {}
      }, flushEveryMs);
      timer.unref();
      process.on('exit', flushQuietly);
      // Runs before Node reports the crash and exits: the reason and every buffered line reach the pipe.
      onCrash = (error, origin) => {
        logger.fatal({ err: error, origin }, 'crashed');
        flushQuietly();
      };
      process.on('uncaughtExceptionMonitor', onCrash);
    },
    uninstall() {
      clearInterval(timer);
      process.off('exit', flushQuietly);
      if (onCrash !== undefined) process.off('uncaughtExceptionMonitor', onCrash);
      flushQuietly();
    },
  };
}
