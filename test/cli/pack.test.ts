/**
 * The npm package as a user gets it: `npm pack` (which builds dist through `prepare`), the tarball
 * installed into an empty folder with npm, and `nunq-connect serve` started from there in demo
 * mode until `/healthz` answers.
 *
 * better-sqlite3 compiles from source (minutes) when no prebuilt binary can be downloaded. Its
 * installer (prebuild-install) also looks in a local folder named by
 * `npm_config_better_sqlite3_local_prebuilds`: the test puts there the binary this checkout's
 * node_modules already built for the same version and Node ABI, so the install runs its real
 * install script and takes seconds. Without such a binary it compiles, as a user's install would.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../support/service.js';

const root = new URL('../..', import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), 'nunq-pack-'));
const started: ChildProcess[] = [];

afterAll(async () => {
  for (const child of started) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  rmSync(work, { recursive: true, force: true });
});

/** Runs a command to its end; rejects with its output when it fails. */
function run(
  command: string,
  args: string[],
  options: { cwd: string; env?: Record<string, string> },
): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += String(d);
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += String(d);
    });
    child.once('error', reject);
    child.once('close', (code) => {
      if (code === 0) resolve({ stdout, stderr });
      else reject(new Error(`${command} ${args.join(' ')} exited ${code}:\n${stdout}\n${stderr}`));
    });
  });
}

/**
 * A prebuild-install tarball (`build/Release/better_sqlite3.node`) of the binary in this checkout's
 * node_modules, when it is the version the package depends on; undefined otherwise.
 */
async function localPrebuilds(): Promise<string | undefined> {
  const wanted = (
    JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
    }
  ).dependencies['better-sqlite3'];
  const installed = join(root, 'node_modules/better-sqlite3');
  const binary = join(installed, 'build/Release/better_sqlite3.node');
  const version = (JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as { version: string })
    .version;
  if (version !== wanted || !existsSync(binary)) return undefined;
  const dir = join(work, 'prebuilds');
  const stage = join(dir, 'stage', 'build', 'Release');
  mkdirSync(stage, { recursive: true });
  writeFileSync(join(stage, 'better_sqlite3.node'), readFileSync(binary));
  const name = `better-sqlite3-v${version}-node-v${process.versions.modules}-${process.platform}-${process.arch}.tar.gz`;
  await run('tar', ['-czf', join(dir, name), '-C', join(dir, 'stage'), 'build'], { cwd: dir });
  return dir;
}

async function waitForHealth(url: string, child: ChildProcess, output: () => string, ms = 60_000) {
  const until = Date.now() + ms;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`serve exited ${child.exitCode}:\n${output()}`);
    try {
      const response = await fetch(url);
      if (response.status === 200) return (await response.json()) as Record<string, unknown>;
    } catch {}
    if (Date.now() > until) throw new Error(`no answer from ${url}:\n${output()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('the npm package', () => {
  it('packs bin, dist and docs only, installs into an empty folder, and serves the demo from there', async () => {
    const packDir = join(work, 'pack');
    mkdirSync(packDir);
    const packed = await run('npm', ['pack', '--json', '--pack-destination', packDir], { cwd: root });
    const [manifest] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('[\n'))) as Array<{
      filename: string;
      files: Array<{ path: string }>;
    }>;
    const files = manifest!.files.map((f) => f.path);
    for (const needed of [
      'package.json',
      'README.md',
      'bin/nunq-connect.js',
      'dist/cli/main.js',
      'dist/cli/node-flags.js',
      'dist/cli/doctor.js',
      'dist/index.js',
      'dist/index.d.ts',
      'dist/store/migrations/0001_initial.js',
      'dist/demo/demo-peers.js',
      'docs/operations.md',
    ]) {
      expect(files).toContain(needed);
    }
    const devFiles = files.filter((f) =>
      /^(src|test|bench|scripts|\.ci|node_modules)\/|\.map$|tsconfig|biome|vitest/.test(f),
    );
    expect(devFiles).toEqual([]);

    const app = join(work, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'pack-test', private: true }));
    const prebuilds = await localPrebuilds();
    await run(
      'npm',
      ['install', '--no-audit', '--no-fund', '--prefer-offline', join(packDir, manifest!.filename)],
      {
        cwd: app,
        env: prebuilds === undefined ? {} : { npm_config_better_sqlite3_local_prebuilds: prebuilds },
      },
    );
    const bin = join(app, 'node_modules/.bin/nunq-connect');
    expect(existsSync(bin)).toBe(true);

    const port = await freePort();
    const env: Record<string, string> = {};
    for (const [key, value] of Object.entries(process.env)) {
      if (value !== undefined && !/^(NUNQ_|LOG_|PORT$|npm_)/.test(key)) env[key] = value;
    }
    env.PORT = String(port);
    env.PATH = `${dirname(process.execPath)}:${env.PATH ?? ''}`;
    const serve = spawn(bin, ['serve'], { cwd: app, env, stdio: ['ignore', 'pipe', 'pipe'] });
    started.push(serve);
    let output = '';
    serve.stdout!.on('data', (d: Buffer) => {
      output += String(d);
    });
    serve.stderr!.on('data', (d: Buffer) => {
      output += String(d);
    });
    const exited = new Promise<number | null>((done) => serve.once('close', (code) => done(code)));

    const health = await waitForHealth(`http://127.0.0.1:${port}/healthz`, serve, () => output);
    expect(health).toEqual({ status: 'ok', database: 'sqlite' });
    expect(existsSync(join(app, '.nunq/nunq.db'))).toBe(true);

    serve.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(output).toContain('stopped');
  }, 300_000);
});
