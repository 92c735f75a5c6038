import { Writable } from 'node:stream';
import type { FastifyBaseLogger } from 'fastify';
import { describe, expect, it } from 'vitest';
import { lazyRequestLoggerFactory } from '../../src/http/request-logger.js';
import { createLogger } from '../../src/observability/logger.js';

/** A service logger writing into an array, and how many children it made. */
function capture(level = 'info') {
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  const logger = createLogger({ level, destination });
  let children = 0;
  const child = logger.child;
  // Counted on the root only: pino children inherit `child` from it through their prototype.
  logger.child = function (this: typeof logger, ...args: Parameters<typeof child>) {
    if (this === logger) children++;
    return child.apply(this, args);
  } as typeof logger.child;
  return { logger, lines, children: () => children };
}

describe('lazyRequestLoggerFactory', () => {
  it('makes no child until a line at an enabled level is written, then writes as a child would', () => {
    const c = capture('info');
    const log = lazyRequestLoggerFactory(c.logger as unknown as FastifyBaseLogger, { reqId: 'r-1' }, {});
    log.debug({ a: 1 }, 'below the level');
    expect(c.children()).toBe(0);
    expect(c.lines).toHaveLength(0);
    log.info({ user: 'alice', token: 'secret-value' }, 'hello %s', 'world');
    expect(c.children()).toBe(1);
    expect(c.lines).toHaveLength(1);
    expect(c.lines[0]).toMatchObject({
      reqId: 'r-1',
      user: 'alice',
      token: '[redacted]',
      msg: 'hello world',
    });
    log.warn('second');
    expect(c.children()).toBe(1);
    expect(c.lines[1]).toMatchObject({ reqId: 'r-1', msg: 'second', level: 40 });
  });

  it('follows a route log level, child(), isLevelEnabled, bindings and level changes', () => {
    const c = capture('info');
    const quiet = lazyRequestLoggerFactory(
      c.logger as unknown as FastifyBaseLogger,
      { reqId: 'r-2' },
      { level: 'error' },
    );
    expect(quiet.level).toBe('error');
    quiet.info('dropped');
    expect(c.lines).toHaveLength(0);
    const log = lazyRequestLoggerFactory(c.logger as unknown as FastifyBaseLogger, { reqId: 'r-3' }, {});
    const typed = log as unknown as { isLevelEnabled(l: string): boolean; bindings(): object };
    expect(typed.isLevelEnabled('info')).toBe(true);
    expect(typed.isLevelEnabled('debug')).toBe(false);
    expect(typed.bindings()).toMatchObject({ reqId: 'r-3' });
    log.child({ step: 'inner' }).info('from a child');
    expect(c.lines.at(-1)).toMatchObject({ reqId: 'r-3', step: 'inner', msg: 'from a child' });
    log.level = 'debug';
    log.debug('now shown');
    expect(c.lines.at(-1)).toMatchObject({ msg: 'now shown', level: 20 });
  });
});
