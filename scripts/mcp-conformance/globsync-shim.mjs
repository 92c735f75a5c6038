// `node --import ./globsync-shim.mjs …`: gives Node 20 the `fs.globSync` that
// @modelcontextprotocol/conformance imports by name from 'fs' (Node 22 has it).
//
// A builtin's ESM named exports are fixed when it first loads, so assigning
// `fs.globSync` is not enough for `import { globSync } from 'fs'`: a module hook
// answers 'fs' / 'node:fs' with a small module that re-exports node:fs plus a
// globSync. The suite uses it only for `**/checks.json` in its tier-check; this
// globSync walks `cwd` and matches with path.matchesGlob (Node >= 20.17). Hand-rolled
// because no installed package offers a drop-in for the missing builtin.
// On a Node that has fs.globSync this file does nothing.
import fs from 'node:fs';
import { register } from 'node:module';

if (typeof fs.globSync !== 'function') {
  const shimUrl = 'nunq-globsync-shim:fs';
  const shimSource = `
import fs from 'node:fs';
import path from 'node:path';
export * from 'node:fs';
export default fs;
export function globSync(pattern, options = {}) {
  const cwd = options.cwd ? String(options.cwd) : process.cwd();
  const patterns = Array.isArray(pattern) ? pattern : [pattern];
  const found = [];
  const walk = (relative) => {
    for (const entry of fs.readdirSync(path.join(cwd, relative), { withFileTypes: true })) {
      const child = relative === '' ? entry.name : relative + '/' + entry.name;
      if (patterns.some((p) => path.matchesGlob(child, p))) found.push(child);
      if (entry.isDirectory()) walk(child);
    }
  };
  walk('');
  return found;
}
`;
  const hooks = `
export async function resolve(specifier, context, nextResolve) {
  if ((specifier === 'fs' || specifier === 'node:fs') && !String(context.parentURL ?? '').startsWith(${JSON.stringify(shimUrl)})) {
    return { url: ${JSON.stringify(shimUrl)}, shortCircuit: true };
  }
  return nextResolve(specifier, context);
}
export async function load(url, context, nextLoad) {
  if (url === ${JSON.stringify(shimUrl)}) {
    return { format: 'module', source: ${JSON.stringify(shimSource)}, shortCircuit: true };
  }
  return nextLoad(url, context);
}
`;
  register(`data:text/javascript,${encodeURIComponent(hooks)}`);
}
