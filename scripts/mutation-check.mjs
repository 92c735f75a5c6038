#!/usr/bin/env node
/**
 * Deliberate breaks of security-critical code that the suite must catch (a small, explicit
 * mutation check). Each entry of test/mutations/*.json names a source file, an exact text in it
 * (`find`) and what to replace it with (`replace`), or several such `edits`, and the test files
 * that must then FAIL. The file is restored after
 * each run (also on Ctrl-C). A mutation whose text is no longer in the file is reported as stale.
 *
 * Usage: node scripts/mutation-check.mjs [substring of a mutation name]
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = 'test/mutations';
const filter = process.argv[2] ?? '';
const mutations = readdirSync(dir)
  .filter((f) => f.endsWith('.json'))
  .flatMap((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')))
  .filter((m) => m.name.includes(filter));

let restore = () => {};
process.on('SIGINT', () => {
  restore();
  process.exit(130);
});

const failures = [];
for (const m of mutations) {
  const original = readFileSync(m.file, 'utf8');
  const edits = m.edits ?? [{ find: m.find, replace: m.replace }];
  if (!edits.every((e) => original.includes(e.find))) {
    failures.push(`${m.name}: stale (text not found in ${m.file})`);
    continue;
  }
  restore = () => writeFileSync(m.file, original);
  writeFileSync(
    m.file,
    edits.reduce((text, e) => text.replace(e.find, e.replace), original),
  );
  try {
    const run = spawnSync('npx', ['vitest', 'run', ...m.tests], { stdio: 'ignore' });
    const caught = run.status !== 0;
    process.stdout.write(`${caught ? 'caught  ' : 'SURVIVED'} ${m.name}\n`);
    if (!caught) failures.push(`${m.name}: survived (${m.tests.join(', ')} still pass)`);
  } finally {
    restore();
    restore = () => {};
  }
}
if (failures.length > 0) {
  process.stderr.write(`\n${failures.join('\n')}\n`);
  process.exit(1);
}
process.stdout.write(`\nall ${mutations.length} mutations caught\n`);
