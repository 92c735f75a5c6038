import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { needsRelaunch, serveNodeFlags } from '../../src/cli/node-flags.js';
import { generateKey } from '../../src/crypto/index.js';
import { chooseLogFormat } from '../../src/observability/log-destination.js';
import { createTestDatabase, databaseKinds, type TestDatabase } from '../support/databases.js';
import { freePort } from '../support/service.js';

const root = new URL('../..', import.meta.url).pathname;
// tsx by its path: the service runs with cwd in a temporary directory, where `tsx` does not resolve.
const tsx = ['--import', pathToFileURL(join(root, 'node_modules/tsx/dist/loader.mjs')).href];
const cliEntry = join(root, 'test/support/cli-entry.ts');

interface Ran {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `node --import tsx <args>` with stdout and stderr as pipes (never a terminal). */
function run(args: string[], options: { env?: Record<string, string | undefined>; cwd?: string } = {}): Ran {
  const env: Record<string, string | undefined> = { ...process.env, ...options.env };
  delete env.LOG_LEVEL;
  delete env.LOG_FORMAT;
  for (const [key, value] of Object.entries(env)) if (value === undefined) delete env[key]; // unset
  const child = spawn(process.execPath, [...tsx, ...args], {
    cwd: options.cwd ?? root,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => {
    out += String(d);
  });
  child.stderr!.on('data', (d: Buffer) => {
    err += String(d);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
    child.once('close', (code, signal) => done({ code, signal })),
  );
  return { child, stdout: () => out, stderr: () => err, exited };
}

async function waitFor(what: () => boolean, ms = 60_000): Promise<void> {
  const until = Date.now() + ms;
  while (!what()) {
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Every non-empty line parsed as JSON; throws on the first that is not. */
function jsonLines(text: string): Array<Record<string, unknown>> {
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        throw new Error(`not a JSON line: ${l.slice(0, 200)}`);
      }
    });
}

/** `pid`'s descendants, parents before children, with their command lines (Linux `/proc`). */
function descendants(pid: number): Array<{ pid: number; command: string }> {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
    } catch {}
  }
  const found: Array<{ pid: number; command: string }> = [];
  const walk = (p: number) => {
    for (const c of children.get(p) ?? []) {
      try {
        found.push({ pid: c, command: readFileSync(`/proc/${c}/cmdline`, 'utf8').split('\0').join(' ') });
      } catch {}
      walk(c);
    }
  };
  walk(pid);
  return found;
}

describe('log format', () => {
  it('is pretty on a terminal, JSON lines otherwise, LOG_FORMAT overriding', () => {
    expect(chooseLogFormat(true, {})).toBe('pretty');
    expect(chooseLogFormat(false, {})).toBe('json');
    expect(chooseLogFormat(true, { LOG_FORMAT: 'json' })).toBe('json');
    expect(chooseLogFormat(false, { LOG_FORMAT: 'pretty' })).toBe('pretty');
    expect(chooseLogFormat(false, { LOG_FORMAT: 'yaml' })).toBe('json');
  });
});

describe('the JSON log destination (asynchronous, buffered)', () => {
  it.each([
    ['exit', 3],
    ['return', 0],
    ['crash', 1],
    ['rejection', 1],
  ] as const)(
    'writes every line before the process ends by %s',
    async (mode, code) => {
      const probe = run([join(root, 'test/support/log-probe.ts'), mode], { env: { LINES: '3000' } });
      const ended = await probe.exited;
      expect(ended.code).toBe(code);
      const lines = jsonLines(probe.stdout());
      const numbered = lines.filter((l) => typeof l.n === 'number').map((l) => l.n);
      expect(numbered).toEqual(Array.from({ length: 3001 }, (_, i) => i + 1));
      if (mode === 'crash' || mode === 'rejection') {
        const last = lines.at(-1)!;
        expect(last.level).toBe(60);
        expect(last.msg).toBe('crashed');
        expect((last.err as { message: string }).message).toBe(`probe ${mode}`);
      } else {
        expect(lines.at(-1)!.msg).toBe('last line');
      }
    },
    60_000,
  );
});

describe('the bin re-executes node for serve', () => {
  const probe = join(root, 'test/support/relaunch-probe.ts');

  it('only for serve, and only without a semi-space size of the operator', () => {
    expect(needsRelaunch(['serve'], [], {})).toBe(true);
    expect(needsRelaunch(['serve', '--config', 'x.yaml'], ['--import', 'tsx'], {})).toBe(true);
    expect(needsRelaunch(['migrate'], [], {})).toBe(false);
    expect(needsRelaunch([], [], {})).toBe(false);
    expect(needsRelaunch(['serve'], ['--max-semi-space-size=64'], {})).toBe(false);
    expect(needsRelaunch(['serve'], [], { NODE_OPTIONS: '--max_semi_space_size=16' })).toBe(false);
  });

  it('with the service flags, passing on the exit code', async () => {
    const p = run([probe, 'serve', 'exit:7']);
    expect((await p.exited).code).toBe(7);
    const execArgv = JSON.parse(p.stdout().split('READY ')[1]!.split('\n')[0]!) as string[];
    expect(execArgv).toEqual(expect.arrayContaining([...serveNodeFlags, ...tsx]));
  }, 30_000);

  it('passes SIGINT and SIGTERM on, and ends as the child ended', async () => {
    const p = run([probe, 'serve', 'wait']);
    await waitFor(() => p.stdout().includes('READY'));
    p.child.kill('SIGINT');
    await new Promise((r) => setTimeout(r, 300));
    p.child.kill('SIGTERM');
    expect(await p.exited).toEqual({ code: 0, signal: null });
    expect(p.stdout()).toContain('TERM after 1 SIGINT');

    const killed = run([probe, 'serve', 'kill:SIGHUP']);
    expect(await killed.exited).toEqual({ code: null, signal: 'SIGHUP' });
  }, 30_000);
});

/** A config file in `dir` for a service on `port` with the database at `url`. */
function writeConfig(dir: string, port: number, url: string): string {
  const file = join(dir, 'nunq-connect.yaml');
  writeFileSync(
    file,
    JSON.stringify({
      server: { host: '127.0.0.1', port, publicUrl: `http://127.0.0.1:${port}` },
      database: { url },
      encryption: { activeKey: 'k1', keys: [{ id: 'k1', key: generateKey() }] },
      auth: { mode: 'jwt', jwt: { secret: 'serve-process-test-secret-0123456789abcdef' } },
    }),
    { mode: 0o600 },
  );
  return file;
}

describe.each(databaseKinds)('serve as its own process (%s)', (kind) => {
  let dir: string;
  let database: TestDatabase;
  let config: string;
  let port: number;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'nunq-serve-'));
    database = await createTestDatabase(kind);
    port = await freePort();
    config = writeConfig(dir, port, database.url);
  });
  afterAll(async () => {
    await database.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('logs only JSON lines into a pipe, up to the last line at shutdown, and runs with its flags', async () => {
    const p = run([cliEntry, 'serve', '--config', config], { cwd: dir });
    await waitFor(() => p.stdout().includes('nunq-connect serving'));
    expect(descendants(p.child.pid!).some((d) => d.command.includes(serveNodeFlags[0]!))).toBe(true);
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${port}/api/v1/connections`)).status).toBe(401);
    p.child.kill('SIGTERM');
    expect(await p.exited).toEqual({ code: 0, signal: null });
    const lines = jsonLines(p.stdout());
    const messages = lines.map((l) => l.msg);
    expect(messages).toContain('nunq-connect serving');
    expect(
      lines.filter((l) => l.msg === 'request completed').map((l) => (l.req as { url: string }).url),
    ).toEqual(expect.arrayContaining(['/healthz', '/api/v1/connections']));
    expect(messages.slice(-2)).toEqual(['shutting down', 'stopped']);
  }, 90_000);
});

describe('serve: demo mode and a terminal', () => {
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'nunq-serve-tty-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('in demo mode keeps the banner and library notices out of a piped stdout', async () => {
    const demoPort = await freePort();
    const demoDir = mkdtempSync(join(tmpdir(), 'nunq-demo-'));
    try {
      const p = run([cliEntry, 'serve'], {
        cwd: demoDir,
        env: { PORT: String(demoPort), NUNQ_CONFIG: undefined },
      });
      await waitFor(() => p.stdout().includes('nunq-connect serving'));
      p.child.kill('SIGTERM');
      expect((await p.exited).code).toBe(0);
      const lines = jsonLines(p.stdout());
      expect(lines.find((l) => l.demo === true)?.level).toBe(40);
      expect(lines.some((l) => String(l.msg).includes('oidc-provider WARNING'))).toBe(true);
      expect(p.stderr()).not.toMatch(/DEMO MODE|oidc-provider|Open http/);
    } finally {
      rmSync(demoDir, { recursive: true, force: true });
    }
  }, 90_000);

  it('logs pretty lines on a terminal', async () => {
    const port = await freePort();
    const config = writeConfig(dir, port, `sqlite:${join(dir, 'tty.db')}`);
    // `script` gives the command a pseudo-terminal for stdin, stdout and stderr.
    const command = [process.execPath, ...tsx, cliEntry, 'serve', '--config', config].join(' ');
    const env: Record<string, string | undefined> = { ...process.env };
    delete env.LOG_FORMAT;
    const s = spawn('script', ['-qfec', command, '/dev/null'], {
      cwd: dir,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    s.stdout!.on('data', (d: Buffer) => {
      out += String(d);
    });
    const closed = new Promise((done) => s.once('close', done));
    try {
      await waitFor(() => out.includes('nunq-connect serving'));
      expect(out).toMatch(/INFO.*nunq-connect serving/);
      expect(out).not.toContain('{"level"');
    } finally {
      // The launcher (the first node process under `script`) passes SIGTERM on to the service.
      const launcher = descendants(s.pid!).find((d) => d.command.includes('cli-entry.ts'));
      if (launcher !== undefined) process.kill(launcher.pid, 'SIGTERM');
      await closed;
    }
  }, 90_000);
});
