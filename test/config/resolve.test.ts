import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfigFile, resolveConfigPath } from '../../src/config/index.js';
import { exampleEnv, fixture } from './fixtures/helpers.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'nunq-config-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('resolveConfigPath', () => {
  it('prefers --config over $NUNQ_CONFIG and ./nunq-connect.yaml', () => {
    writeFileSync(join(dir, 'nunq-connect.yaml'), '');
    expect(
      resolveConfigPath({ flag: '/etc/flag.yaml', env: { NUNQ_CONFIG: '/etc/env.yaml' }, cwd: dir }),
    ).toBe('/etc/flag.yaml');
  });

  it('uses $NUNQ_CONFIG when there is no flag, even if ./nunq-connect.yaml exists', () => {
    writeFileSync(join(dir, 'nunq-connect.yaml'), '');
    expect(resolveConfigPath({ env: { NUNQ_CONFIG: '/etc/env.yaml' }, cwd: dir })).toBe('/etc/env.yaml');
  });

  it('falls back to nunq-connect.yaml in the working directory when it exists', () => {
    expect(resolveConfigPath({ env: {}, cwd: dir })).toBeUndefined();
    writeFileSync(join(dir, 'nunq-connect.yaml'), '');
    expect(resolveConfigPath({ env: {}, cwd: dir })).toBe(join(dir, 'nunq-connect.yaml'));
  });

  it('refuses an empty --config or $NUNQ_CONFIG instead of falling back (no demo mode by accident)', () => {
    writeFileSync(join(dir, 'nunq-connect.yaml'), '');
    for (const opts of [
      { flag: '' },
      { flag: ' ' },
      { env: { NUNQ_CONFIG: '' } },
      { env: { NUNQ_CONFIG: ' ' } },
    ]) {
      expect(() => resolveConfigPath({ env: {}, ...opts, cwd: dir }), JSON.stringify(opts)).toThrow(
        ConfigError,
      );
    }
  });

  it('resolves relative paths against cwd', () => {
    expect(resolveConfigPath({ flag: 'conf/a.yaml', env: {}, cwd: dir })).toBe(join(dir, 'conf/a.yaml'));
    expect(resolveConfigPath({ env: { NUNQ_CONFIG: 'b.yaml' }, cwd: dir })).toBe(join(dir, 'b.yaml'));
  });

  it('returns undefined (demo mode) when nothing is configured', () => {
    expect(resolveConfigPath({ env: {}, cwd: dir, exists: () => false })).toBeUndefined();
  });
});

describe('loadConfigFile', () => {
  it('reads and parses a file', async () => {
    const path = join(dir, 'nunq-connect.yaml');
    writeFileSync(path, fixture('contract-example.yaml'));
    const config = await loadConfigFile(path, exampleEnv());
    expect(config.providers.map((p) => p.id)).toEqual(['entra', 'acme', 'legacy']);
  });

  it('turns a missing file into a ConfigError at (file)', async () => {
    const path = join(dir, 'missing.yaml');
    const error = await loadConfigFile(path, {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues).toEqual([
      { path: '(file)', message: `cannot read ${path} (ENOENT)` },
    ]);
  });
});
