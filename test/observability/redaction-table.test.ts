/**
 * Every field name the logger must censor, table-driven, through the real logger (createLogger)
 * into a buffer, at every depth pino's redact paths cover (the log object and three levels
 * below). The list is written out here rather than imported, so dropping a name from
 * src/observability/logger.ts fails this test.
 */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/observability/logger.js';

const censored = [
  'authorization',
  'cookie',
  'set-cookie',
  'access_token',
  'refresh_token',
  'id_token',
  'accessToken',
  'refreshToken',
  'idToken',
  'code',
  'authorization_code',
  'code_verifier',
  'codeVerifier',
  'client_secret',
  'clientSecret',
  'secret',
  'password',
  'token',
  'key',
  'state',
] as const;

/** A logger at `debug` writing into a buffer; `lines()` parses what it wrote. */
function bufferLogger() {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(String(chunk));
      cb();
    },
  });
  const logger = createLogger({ level: 'debug', destination });
  const raw = () => chunks.join('');
  const lines = () =>
    raw()
      .split('\n')
      .filter((l) => l.length > 0)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { logger, raw, lines };
}

/** `{field: value}` wrapped in `depth - 1` objects (depth 1 = a top-level field of the log line). */
function nested(depth: number, field: string, value: string): Record<string, unknown> {
  let obj: Record<string, unknown> = { [field]: value, neighbour: 'visible' };
  for (let i = depth - 1; i >= 1; i--) obj = { [`outer${i}`]: obj };
  return obj;
}

function reach(line: Record<string, unknown>, depth: number): Record<string, unknown> {
  let obj = line;
  for (let i = 1; i < depth; i++) obj = obj[`outer${i}`] as Record<string, unknown>;
  return obj;
}

const cases = censored.flatMap((field) => [1, 2, 3, 4].map((depth) => [field, depth] as const));

describe('log redaction, field by field', () => {
  it.each(cases)('censors %s at depth %i', (field, depth) => {
    const { logger, raw, lines } = bufferLogger();
    const secret = `SECRET_${field.replace(/\W/g, '_')}_${depth}_7f3a`;
    logger.info(nested(depth, field, secret), 'a line');
    const [line] = lines();
    expect(line, 'one line was written').toBeDefined();
    const holder = reach(line!, depth);
    expect(holder[field]).toBe('[redacted]');
    // The neighbour of a censored field is untouched: the path, not the whole object, is censored.
    expect(holder.neighbour).toBe('visible');
    expect(raw()).not.toContain(secret);
  });

  it.each(['debug', 'info', 'warn', 'error'] as const)('censors at level %s too', (level) => {
    const { logger, raw } = bufferLogger();
    logger[level](
      { state: 'S-STATE', key: 'S-KEY', password: 'S-PW', authorization_code: 'S-AC', codeVerifier: 'S-CV' },
      'flow',
    );
    expect(raw()).toContain('[redacted]');
    expect(raw()).not.toMatch(/S-(STATE|KEY|PW|AC|CV)/);
  });

  it('censors in a child logger too', () => {
    const { logger, raw } = bufferLogger();
    logger.child({ component: 'flow' }).warn({ pending: { state: 'S-STATE2', codeVerifier: 'S-CV2' } }, 'x');
    expect(raw()).toContain('"component":"flow"');
    expect(raw()).not.toMatch(/S-(STATE2|CV2)/);
  });

  it('keeps names that merely resemble a censored one', () => {
    const { logger, lines } = bufferLogger();
    logger.info({ keyId: 'k1', stateful: 'yes', problem: 'state_invalid', tokens: 2 }, 'x');
    expect(lines()[0]).toMatchObject({ keyId: 'k1', stateful: 'yes', problem: 'state_invalid', tokens: 2 });
  });
});
