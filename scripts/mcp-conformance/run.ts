/**
 * Runs the MCP conformance suite's browser-flow `auth/*` client scenarios against the service,
 * one after another, with `driver.ts` as the client, and prints a table (docs/conformance-notes.md).
 *
 *   node --import tsx scripts/mcp-conformance/run.ts [--scenario auth/x ...]
 *     [--spec-version V | --draft-only-at V] [--timeout ms] [--json FILE]
 *
 * `--spec-version V` runs every scenario at V; `--draft-only-at V` only those tagged with the
 * draft revision alone (`--draft-only-at 2025-11-25` is what test/conformance does, see there).
 *
 * Exit 0 only when every scenario run passed. The suite is found in
 * `node_modules/@modelcontextprotocol/conformance`, or in `$NUNQ_CONFORMANCE_DIR` (its package
 * directory) for a copy installed elsewhere; it must be `requiredSuiteVersion`.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const requiredSuiteVersion = '0.2.0-alpha.12';
const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '../..');
const shims = ['globsync-shim.mjs', 'loopback-shim.mjs'].flatMap((f) => [
  '--import',
  pathToFileURL(join(here, f)).href,
]);

/** Where the suite is, or an error saying how to get it. */
export function locateSuite(): { dir: string; bin: string } {
  let dir = process.env.NUNQ_CONFORMANCE_DIR;
  if (dir === undefined) {
    try {
      const require = createRequire(join(root, 'package.json'));
      dir = dirname(require.resolve('@modelcontextprotocol/conformance/package.json'));
    } catch {
      throw new Error(
        `the MCP conformance suite is not installed: run \`npm install --save-dev --save-exact ` +
          `@modelcontextprotocol/conformance@${requiredSuiteVersion}\` (or set NUNQ_CONFORMANCE_DIR to its package directory)`,
      );
    }
  }
  const manifest = join(dir, 'package.json');
  if (!existsSync(manifest)) throw new Error(`no MCP conformance suite at ${dir} (no package.json)`);
  const { name, version } = JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string; version?: string };
  if (name !== '@modelcontextprotocol/conformance' || version !== requiredSuiteVersion) {
    throw new Error(
      `${dir} holds ${name}@${version}, not @modelcontextprotocol/conformance@${requiredSuiteVersion}`,
    );
  }
  return { dir, bin: join(dir, 'dist/index.js') };
}

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(args: string[], timeoutMs: number, env: Record<string, string> = {}): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      cwd: root,
      env: { ...process.env, ...env },
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
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A scenario as `list --client` shows it: its name and the spec versions it is tagged with. */
export interface ListedScenario {
  name: string;
  /** E.g. `['2025-11-25', '2026-07-28']`; `['extension']` for extensions. */
  versions: string[];
}

/** The draft revision the suite runs its draft-only scenarios at (stateless MCP, SEP-2575). */
export const draftVersion = '2026-07-28';

/**
 * The browser-flow auth scenarios, as `list --client` names them: every `auth/*` one not tagged
 * `[extension]` (27 in 0.2.0-alpha.12).
 */
export async function listBrowserFlowAuthScenarios(): Promise<ListedScenario[]> {
  const { bin } = locateSuite();
  const listed = await run([...shims, bin, 'list', '--client'], 60_000);
  if (listed.code !== 0)
    throw new Error(`conformance list --client failed (${listed.code}): ${listed.stderr}`);
  return listed.stdout
    .split('\n')
    .map((line) => /^\s*-\s+(auth\/\S+)\s+\[([^\]]*)\]/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null && m[2] !== 'extension')
    .map((m) => ({ name: m[1]!, versions: m[2]!.split(',') }));
}

/**
 * The `--spec-version` to run `scenario` at: `draftOnlyAt` for a scenario tagged with the draft
 * revision only (the suite would give it the stateless 2026-07-28 MCP server, which an MCP SDK
 * 1.x client cannot talk to after authorization), else the suite's own choice (undefined).
 */
export function specVersionFor(
  scenario: ListedScenario,
  draftOnlyAt: string | undefined,
): string | undefined {
  const draftOnly = scenario.versions.length === 1 && scenario.versions[0] === draftVersion;
  return draftOnly ? draftOnlyAt : undefined;
}

export interface Check {
  id: string;
  name?: string;
  description?: string;
  status: 'SUCCESS' | 'FAILURE' | 'WARNING' | 'INFO' | 'SKIPPED';
  errorMessage?: string;
  details?: unknown;
}

export interface ScenarioResult {
  scenario: string;
  passed: boolean;
  /** What failed, one line each: FAILURE/WARNING checks, the client's end, the runner's own errors. */
  problems: string[];
  checks: Check[];
  /** The driver's stdout (its steps), for the record. */
  driverOutput: string;
  seconds: number;
}

export interface RunOptions {
  /** `--spec-version` for the suite (with `--force`, so draft-only scenarios run at a dated version). */
  specVersion?: string;
  /** Per-scenario timeout of the suite (ms); the process gets 30 s more. */
  timeoutMs?: number;
}

/** Runs one scenario through the suite with the driver; the verdict is the suite's exit code. */
export async function runScenario(scenario: string, options: RunOptions = {}): Promise<ScenarioResult> {
  const { bin } = locateSuite();
  const started = Date.now();
  const out = mkdtempSync(join(tmpdir(), 'nunq-conformance-results-'));
  const tsx = join(root, 'node_modules/tsx/dist/loader.mjs');
  // The suite splits --command on spaces and runs it in a shell: these paths must not contain any.
  const command = `${process.execPath} --import ${pathToFileURL(tsx).href} ${join(here, 'driver.ts')}`;
  const timeoutMs = options.timeoutMs ?? 150_000;
  const args = [...shims, bin, 'client', '--command', command, '--scenario', scenario];
  args.push('--timeout', String(timeoutMs), '-o', out);
  if (options.specVersion !== undefined) args.push('--spec-version', options.specVersion, '--force');
  try {
    // The driver ends itself 10 s before the suite's timeout, so its own FAIL line says why.
    const driverDeadline = String(Math.max(10_000, timeoutMs - 10_000));
    const ran = await run(args, timeoutMs + 30_000, { NUNQ_CONFORMANCE_DRIVER_DEADLINE_MS: driverDeadline });
    // `-o DIR` writes DIR/<scenario>-<timestamp>/ (so DIR/auth/<name>-<timestamp>/ here).
    const resultDir = readdirSync(out, { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('checks.json'))
      .map((f) => dirname(join(out, f)))[0];
    const read = (file: string) =>
      resultDir !== undefined && existsSync(join(resultDir, file))
        ? readFileSync(join(resultDir, file), 'utf8')
        : '';
    const checksText = read('checks.json');
    const checks = checksText === '' ? [] : (JSON.parse(checksText) as Check[]);
    const driverOutput = read('stdout.txt');
    const problems = checks
      .filter((c) => c.status === 'FAILURE' || c.status === 'WARNING')
      .map((c) => {
        const reason = (c.details as { reason?: unknown } | undefined)?.reason;
        const why = [c.errorMessage, typeof reason === 'string' ? reason : undefined]
          .filter(Boolean)
          .join('; ');
        return `${c.status} ${c.id}: ${c.description ?? ''}${why ? ` (${why})` : ''}`;
      });
    const exited = /Client exited with code (\d+)/.exec(ran.stderr);
    const driverFail = /^FAIL: .*$/m.exec(driverOutput);
    if (/CLIENT TIMED OUT|Client timed out/.test(ran.stderr))
      problems.push(`client timed out after ${timeoutMs} ms`);
    if (exited) {
      const allowed = ran.code === 0;
      problems.push(
        `client exited with code ${exited[1]}${allowed ? ' (allowed by this scenario)' : ''}${driverFail ? `: ${driverFail[0].slice(6)}` : ''}`,
      );
    }
    if (ran.code !== 0 && ran.code !== 1)
      problems.push(`the suite ended with code ${ran.code}: ${ran.stderr.slice(-600)}`);
    if (checks.length === 0 && ran.code !== 0) problems.push(`no checks recorded: ${ran.stderr.slice(-600)}`);
    return {
      scenario,
      passed: ran.code === 0,
      problems,
      checks,
      driverOutput,
      seconds: Math.round((Date.now() - started) / 100) / 10,
    };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

/** The table: one line per scenario, its problems indented below it. */
export function formatTable(results: readonly ScenarioResult[]): string {
  const width = Math.max(8, ...results.map((r) => r.scenario.length));
  const lines = [`${'scenario'.padEnd(width)}  result  time`];
  for (const r of results) {
    lines.push(`${r.scenario.padEnd(width)}  ${r.passed ? 'PASS' : 'FAIL'}    ${r.seconds}s`);
    for (const p of r.problems) lines.push(`${' '.repeat(width + 2)}- ${p}`);
  }
  const passed = results.filter((r) => r.passed).length;
  lines.push(`${passed}/${results.length} passed`);
  return lines.join('\n');
}

async function main(argv: string[]): Promise<number> {
  const scenarios: string[] = [];
  let json: string | undefined;
  let draftOnlyAt: string | undefined;
  const options: RunOptions = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = argv[i + 1];
    if (arg === '--scenario' && value) scenarios.push(value);
    else if (arg === '--spec-version' && value) options.specVersion = value;
    else if (arg === '--draft-only-at' && value) draftOnlyAt = value;
    else if (arg === '--json' && value) json = value;
    else if (arg === '--timeout' && value) options.timeoutMs = Number(value);
    else {
      process.stderr.write(
        'usage: run.ts [--scenario auth/x ...] [--spec-version V | --draft-only-at V] [--timeout ms] [--json FILE]\n',
      );
      return 2;
    }
    i++;
  }
  const listed = await listBrowserFlowAuthScenarios();
  const chosen = scenarios.length > 0 ? scenarios : listed.map((l) => l.name);
  const results: ScenarioResult[] = [];
  for (const name of chosen) {
    const entry = listed.find((l) => l.name === name) ?? { name, versions: [] };
    const specVersion = options.specVersion ?? specVersionFor(entry, draftOnlyAt);
    const result = await runScenario(name, {
      ...options,
      ...(specVersion === undefined ? {} : { specVersion }),
    });
    process.stderr.write(`${result.passed ? 'PASS' : 'FAIL'} ${name} (${result.seconds}s)\n`);
    results.push(result);
  }
  process.stdout.write(`${formatTable(results)}\n`);
  if (json !== undefined) writeFileSync(json, `${JSON.stringify(results, null, 2)}\n`);
  return results.every((r) => r.passed) ? 0 : 1;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    process.exitCode = await main(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  }
}
