import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jwtVerify } from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Io, main } from '../../src/cli/main.js';
import { generateKey } from '../../src/crypto/index.js';
import { loadDemoSecrets } from '../../src/demo/demo-config.js';

const jwtSecret = 'cli-refusal-jwt-secret-of-at-least-32-chars';

interface FakeIo extends Io {
  stdout(): string;
  stderr(): string;
}

function fakeIo(cwd: string, env: Record<string, string | undefined> = {}): FakeIo {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out: (t) => out.push(t),
    err: (t) => err.push(t),
    env,
    cwd,
    isTTY: false,
    stdout: () => out.join(''),
    stderr: () => err.join(''),
  };
}

function validYaml(databaseUrl = 'sqlite:./data/nunq.db'): string {
  return `database:
  url: ${databaseUrl}
encryption:
  activeKey: k1
  keys:
    - { id: k1, key: "${generateKey()}" }
auth:
  mode: jwt
  jwt: { secret: "${jwtSecret}" }
`;
}

/** Bad input 1 and 6: commands refuse clearly, exit non-zero, and create nothing. */
describe('nunq-connect refuses what it cannot do well', () => {
  let cwd: string;

  beforeEach(() => {
    cwd = mkdtempSync(join(tmpdir(), 'nunq-refuse-'));
  });
  afterEach(() => {
    rmSync(cwd, { recursive: true, force: true });
  });

  const run = async (argv: string[], env: Record<string, string | undefined> = {}) => {
    const io = fakeIo(cwd, env);
    const code = await main(argv, io);
    return { code, out: io.stdout(), err: io.stderr() };
  };

  describe('no demo mode by accident', () => {
    it.each([
      { argv: ['serve', '--config', ''], env: {}, message: '--config is empty' },
      { argv: ['serve', '--config='], env: {}, message: '--config is empty' },
      { argv: ['serve', '--config', '  '], env: {}, message: '--config is empty' },
      { argv: ['serve'], env: { NUNQ_CONFIG: '' }, message: '$NUNQ_CONFIG is set but empty' },
      { argv: ['migrate', '--config', ''], env: {}, message: '--config is empty' },
      { argv: ['token', '--user', 'x'], env: { NUNQ_CONFIG: '' }, message: '$NUNQ_CONFIG is set but empty' },
    ])('$argv with $env refuses an empty config setting', async ({ argv, env, message }) => {
      const r = await run(argv, env);
      expect(r.code).toBe(1);
      expect(r.err).toContain(message);
      expect(readdirSync(cwd)).toEqual([]);
    });

    it.each([['migrate'], ['keys', 'rotate'], ['token', '--user', 'alice']])(
      '%s without any config refuses (exit 2) and creates nothing',
      async (...argv) => {
        const r = await run(argv);
        expect(r.code).toBe(2);
        expect(r.out).toBe('');
        expect(r.err).toMatch(/needs a config file .*only serve runs demo mode/);
        expect(readdirSync(cwd)).toEqual([]);
      },
    );

    it('token without a config signs for a demo that serve made here, says so, and creates nothing', async () => {
      const { secrets } = loadDemoSecrets(cwd);
      const before = readdirSync(join(cwd, '.nunq'));
      const r = await run(['token', '--user', 'alice']);
      expect(r.code).toBe(0);
      expect(r.err).toContain('signing for the demo');
      const { payload } = await jwtVerify(r.out.trim(), new TextEncoder().encode(secrets.jwtSecret));
      expect(payload.sub).toBe('alice');
      expect(readdirSync(join(cwd, '.nunq'))).toEqual(before);
    });

    it('PORT=abc in demo mode names the variable, not "a number, not a number", before creating anything', async () => {
      const r = await run(['serve'], { PORT: 'abc' });
      expect(r.code).toBe(1);
      expect(r.err).toContain('the PORT environment variable must be an integer from 0 to 65535');
      expect(r.err).not.toContain('not a number');
      expect(readdirSync(cwd)).toEqual([]);
    });
  });

  describe('a config that is not a regular file', () => {
    const fifo = () => {
      const path = join(cwd, 'config.fifo');
      execFileSync('mkfifo', [path]);
      return path;
    };
    it.each([
      { argv: (f: string) => ['check-config', f], make: fifo, kind: 'a FIFO (named pipe)' },
      { argv: (f: string) => ['migrate', '--config', f], make: fifo, kind: 'a FIFO (named pipe)' },
      {
        argv: (f: string) => ['token', '--user', 'x', '--config', f],
        make: fifo,
        kind: 'a FIFO (named pipe)',
      },
      { argv: (f: string) => ['serve', '--config', f], make: fifo, kind: 'a FIFO (named pipe)' },
      {
        argv: (f: string) => ['check-config', f],
        make: () => {
          mkdirSync(join(cwd, 'dir.yaml'));
          return join(cwd, 'dir.yaml');
        },
        kind: 'a directory',
      },
      { argv: (f: string) => ['check-config', f], make: () => '/dev/zero', kind: 'a device' },
    ])(
      'is refused at once: $kind',
      async ({ argv, make, kind }) => {
        const file = make();
        const started = Date.now();
        const r = await run(argv(file));
        expect(r.code).toBe(1);
        expect(r.err).toContain(`(file): ${file} is ${kind}, not a regular file`);
        expect(Date.now() - started).toBeLessThan(2000);
      },
      5000,
    );
  });

  describe('token mints only what the server accepts', () => {
    const withConfig = async (extra: string[]) => {
      const file = join(cwd, 'nunq.yaml');
      writeFileSync(file, validYaml());
      return run(['token', ...extra, '--config', file]);
    };
    it.each([
      { args: ['--user', 'a b'], message: '--user must be' },
      { args: ['--user', ''], message: '--user must be' },
      { args: ['--user', 'x'.repeat(201)], message: '--user must be' },
      { args: ['--user', 'jörg'], message: '--user must be' },
      { args: ['--user', 'a/b'], message: '--user must be' },
      { args: ['--user', '#admins'], message: '--user must be' },
      { args: ['--user', 'x', '--expires-in=-1h'], message: '--expires-in must be' },
      { args: ['--user', 'x', '--expires-in', '0s'], message: '--expires-in must be' },
      { args: ['--user', 'x', '--expires-in', '10'], message: '--expires-in must be' },
      { args: ['--user', 'x', '--expires-in', '2 years'], message: '--expires-in must be' },
      { args: ['--user', 'x', '--expires-in', '400d'], message: '--expires-in must be' },
      { args: ['--user', 'x', '--role', 'root'], message: '--role can only be admin' },
    ])('refuses $args (exit 2)', async ({ args, message }) => {
      const r = await withConfig(args);
      expect(r.code).toBe(2);
      expect(r.out).toBe('');
      expect(r.err).toContain(message);
    });

    it.each([
      [['--user', 'alice@example.com'], 12 * 3600],
      [['--user', 'svc:bot|1', '--expires-in', '90s'], 90],
      [['--user', 'x', '--expires-in', '7d', '--role', 'admin'], 7 * 86_400],
    ])('mints %j with the lifetime asked', async (args, seconds) => {
      const r = await withConfig(args);
      expect(r.code).toBe(0);
      const { payload } = await jwtVerify(r.out.trim(), new TextEncoder().encode(jwtSecret));
      expect(payload.exp! - payload.iat!).toBe(seconds);
    });
  });

  describe('database errors say which database, never its password', () => {
    it.each([
      {
        name: 'a SQLite path under a file',
        url: () => {
          writeFileSync(join(cwd, 'plain-file'), '');
          return `sqlite:${join(cwd, 'plain-file', 'nunq.db')}`;
        },
        expected: () => `database.url sqlite:${join(cwd, 'plain-file', 'nunq.db')}: `,
      },
      {
        name: 'a SQLite file that is not a database',
        url: () => {
          writeFileSync(join(cwd, 'junk.db'), 'this is not a database file at all, just text'.repeat(100));
          return `sqlite:${join(cwd, 'junk.db')}`;
        },
        expected: () => `database.url sqlite:${join(cwd, 'junk.db')}: `,
      },
      {
        name: 'an unreachable PostgreSQL with a password',
        url: () => 'postgres://nunq:hunter2-secret@127.0.0.1:1/nunq',
        expected: () => 'database.url postgres://nunq:***@127.0.0.1:1/nunq: ',
      },
    ])('$name', async ({ url, expected }) => {
      const file = join(cwd, 'nunq.yaml');
      writeFileSync(file, validYaml(url()));
      for (const argv of [
        ['migrate', '--config', file],
        ['keys', 'rotate', '--config', file],
      ]) {
        const r = await run(argv);
        expect(r.code, argv.join(' ')).toBe(1);
        expect(r.err).toMatch(/^nunq-connect: .+\n$/);
        expect(r.err).toContain(expected());
        expect(r.err).not.toContain('hunter2');
      }
    });
  });
});
