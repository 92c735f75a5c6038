/**
 * The mutation check: breaks each security-critical protection on purpose (scripts/mutations.ts),
 * runs only the test files that must notice, and reports whether they did. A protection whose
 * break the tests miss has no real test. Not part of `npm test` (it runs vitest once per entry).
 *
 *   node --import tsx scripts/mutation-check.ts            # every entry
 *   node --import tsx scripts/mutation-check.ts --only rotation-cas,csrf-token
 *   node --import tsx scripts/mutation-check.ts --list     # the entries, nothing run
 *   node --import tsx scripts/mutation-check.ts --baseline # first run each test list unbroken
 *
 * Refuses to start on a dirty work tree (it edits source files), restores each file in a
 * `finally` and on SIGINT/SIGTERM, and exits non-zero when any entry is missed, stale (its
 * search string no longer matches exactly once) or has no test file.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Mutation, mutations } from './mutations.js';

type Outcome = 'caught' | 'missed' | 'stale' | 'no-tests' | 'baseline-fails';

interface Result {
  mutation: Mutation;
  outcome: Outcome;
  seconds: number;
  /** The tail of vitest's output, kept for missed entries. */
  detail?: string;
}

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const vitestBin = join(root, 'node_modules', 'vitest', 'vitest.mjs');
const perRunTimeoutMs = 5 * 60_000;

/** The file being mutated right now and its original text, for the signal handler. */
let pending: { path: string; original: string } | undefined;
let child: ReturnType<typeof spawn> | undefined;

function restorePending(): void {
  if (pending !== undefined) {
    writeFileSync(pending.path, pending.original);
    pending = undefined;
  }
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (child?.pid !== undefined) {
      try {
        process.kill(-child.pid, 'SIGTERM'); // vitest and its workers (own process group)
      } catch {
        // already gone
      }
    }
    restorePending();
    process.stderr.write(`\nmutation-check: interrupted; source restored\n`);
    process.exit(130);
  });
}

/** Refuses to run unless `git status` is clean: restoring must never touch someone's edits. */
function assertCleanWorkTree(): void {
  const status = execFileSync('git', ['status', '--porcelain'], { cwd: root, encoding: 'utf8' });
  if (status.trim() !== '') {
    process.stderr.write(`mutation-check: the work tree is not clean; commit or stash first:\n${status}`);
    process.exit(2);
  }
}

/** Fails loudly if a mutated file differs from the commit (it was restored in a finally). */
function assertRestored(files: readonly string[]): void {
  const changed = execFileSync('git', ['diff', '--name-only', '--', ...new Set(files)], {
    cwd: root,
    encoding: 'utf8',
  });
  if (changed.trim() !== '') {
    process.stderr.write(`mutation-check: not restored, check by hand:\n${changed}`);
    process.exit(3);
  }
}

/** Runs vitest on `files`; resolves with whether every test passed and the output's tail. */
function runVitest(files: readonly string[]): Promise<{ passed: boolean; tail: string }> {
  return new Promise((resolve) => {
    const output: string[] = [];
    child = spawn(process.execPath, [vitestBin, 'run', '--reporter=dot', ...files], {
      cwd: root,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' },
    });
    const keep = (d: Buffer) => {
      output.push(d.toString('utf8'));
      if (output.length > 400) output.splice(0, output.length - 400);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    const running = child;
    const timer = setTimeout(() => {
      if (running.pid !== undefined) process.kill(-running.pid, 'SIGKILL');
    }, perRunTimeoutMs);
    running.once('exit', (code) => {
      clearTimeout(timer);
      child = undefined;
      resolve({ passed: code === 0, tail: output.join('').split('\n').slice(-25).join('\n') });
    });
  });
}

/** Applies one break, runs its tests, restores the file whatever happens. */
async function check(m: Mutation): Promise<Result> {
  const started = Date.now();
  const seconds = () => Math.round((Date.now() - started) / 100) / 10;
  const missing = m.tests.filter((t) => !existsSync(join(root, t)));
  if (m.tests.length === 0 || missing.length > 0) {
    return { mutation: m, outcome: 'no-tests', seconds: 0, detail: `missing: ${missing.join(', ')}` };
  }
  const path = join(root, m.file);
  const original = existsSync(path) ? readFileSync(path, 'utf8') : '';
  const edits = [{ search: m.search, replace: m.replace }, ...(m.also ?? [])];
  for (const edit of edits) {
    const matches = original.split(edit.search).length - 1;
    if (matches !== 1) {
      return { mutation: m, outcome: 'stale', seconds: 0, detail: `search string matches ${matches} times` };
    }
  }
  pending = { path, original };
  try {
    writeFileSync(
      path,
      edits.reduce((text, edit) => text.replace(edit.search, () => edit.replace), original),
    );
    const run = await runVitest(m.tests);
    return run.passed
      ? { mutation: m, outcome: 'missed', seconds: seconds(), detail: run.tail }
      : { mutation: m, outcome: 'caught', seconds: seconds() };
  } finally {
    restorePending();
  }
}

function printTable(results: readonly Result[]): void {
  const rows = results.map((r) => [
    r.mutation.id,
    r.outcome,
    `${r.seconds.toFixed(1)}s`,
    r.mutation.file,
    r.mutation.description,
  ]);
  const head = ['mutation', 'result', 'time', 'file', 'what is broken'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  process.stdout.write(`${line(head)}\n${line(widths.map((w) => '-'.repeat(w)))}\n`);
  for (const row of rows) process.stdout.write(`${line(row)}\n`);
}

async function main(argv: readonly string[]): Promise<number> {
  const onlyArg = argv.find((a) => a.startsWith('--only'));
  const only =
    onlyArg === undefined
      ? undefined
      : new Set(
          (onlyArg.includes('=') ? onlyArg.split('=')[1]! : argv[argv.indexOf(onlyArg) + 1]!).split(','),
        );
  const selected = mutations.filter((m) => only === undefined || only.has(m.id));
  if (only !== undefined && selected.length !== only.size) {
    const known = new Set(mutations.map((m) => m.id));
    process.stderr.write(
      `mutation-check: unknown id(s): ${[...only].filter((id) => !known.has(id)).join(', ')}\n`,
    );
    return 2;
  }
  if (argv.includes('--list')) {
    for (const m of selected)
      process.stdout.write(`${m.id}\t${m.file}\t${m.description}\t${m.tests.join(' ')}\n`);
    return 0;
  }
  assertCleanWorkTree();

  const baselineFailures = new Set<string>();
  if (argv.includes('--baseline')) {
    const lists = new Map(selected.map((m) => [m.tests.join(' '), m.tests]));
    for (const [key, files] of lists) {
      if (files.some((f) => !existsSync(join(root, f)))) continue;
      process.stdout.write(`baseline: ${key} … `);
      const run = await runVitest(files);
      process.stdout.write(run.passed ? 'passes\n' : `FAILS\n${run.tail}\n`);
      if (!run.passed) baselineFailures.add(key);
    }
  }

  const results: Result[] = [];
  for (const m of selected) {
    process.stdout.write(`${m.id} … `);
    const result = baselineFailures.has(m.tests.join(' '))
      ? { mutation: m, outcome: 'baseline-fails' as const, seconds: 0 }
      : await check(m);
    process.stdout.write(`${result.outcome} (${result.seconds.toFixed(1)}s)\n`);
    if (result.outcome !== 'caught' && result.detail !== undefined) {
      process.stdout.write(`${result.detail.replace(/^/gm, '    ')}\n`);
    }
    results.push(result);
  }
  assertRestored(selected.map((m) => m.file));

  process.stdout.write('\n');
  printTable(results);
  const failed = results.filter((r) => r.outcome !== 'caught');
  const caught = results.length - failed.length;
  process.stdout.write(
    `\n${caught} of ${results.length} mutations caught${failed.length === 0 ? '' : `; not caught: ${failed.map((r) => `${r.mutation.id} (${r.outcome})`).join(', ')}`}\n`,
  );
  return failed.length === 0 ? 0 : 1;
}

process.exitCode = await main(process.argv.slice(2));
