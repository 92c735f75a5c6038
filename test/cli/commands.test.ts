import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jwtVerify } from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Io, main } from '../../src/cli/main.js';
import { generateKey, Keyring } from '../../src/crypto/index.js';
import { loadDemoSecrets } from '../../src/demo/demo-config.js';
import { openStore } from '../../src/store/database.js';

const jwtSecret = 'cli-test-jwt-secret-of-at-least-32-chars';

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

async function verify(token: string, secret: string) {
  return (await jwtVerify(token, new TextEncoder().encode(secret), { algorithms: ['HS256'] })).payload;
}

/** A valid config for `cwd`: SQLite under it, a jwt secret, one key. */
function validYaml(extra = ''): string {
  return `database:
  url: sqlite:./data/nunq.db
encryption:
  activeKey: k1
  keys:
    - { id: k1, key: "${generateKey()}" }
auth:
  mode: jwt
  jwt: { secret: "\${JWT_SECRET}" }
${extra}`;
}

describe('nunq-connect CLI', () => {
  let cwd: string;

  beforeEach(() => {
    cwd = mkdtempSync(join(tmpdir(), 'nunq-cli-'));
  });
  afterEach(() => {
    rmSync(cwd, { recursive: true, force: true });
  });

  const write = (name: string, text: string): string => {
    const file = join(cwd, name);
    writeFileSync(file, text);
    return file;
  };

  describe('check-config', () => {
    const brokenKey = 'c2hvcnQta2V5LVRPUFNFQ1JFVC1rZXk=';
    const broken = `server:
  prot: 3000
  publicUrl: "ftp://nunq.example"
database:
  url: mysql://db.example/nunq
encryption:
  activeKey: k9
  keys:
    - { id: k1, key: "${brokenKey}" }
    - { id: k2, key: "\${NUNQ_KEY_K2}" }
auth:
  mode: jwt
telemetry: true
`;

    it('prints every problem of a broken file as a `path: message` line and exits 1', async () => {
      const io = fakeIo(cwd);
      expect(await main(['check-config', write('broken.yaml', broken)], io)).toBe(1);
      expect(io.stdout()).toBe('');
      const lines = io.stderr().trimEnd().split('\n');
      for (const line of lines) expect(line).toMatch(/^[A-Za-z0-9_.[\]"()]+: \S.*$/);
      const paths = lines.map((l) => l.slice(0, l.indexOf(': ')));
      expect(paths.sort()).toEqual(
        [
          'server.prot',
          'server.publicUrl',
          'database.url',
          'encryption.activeKey',
          'encryption.keys[0].key',
          'encryption.keys[1].key',
          'auth.jwt',
          'telemetry',
        ].sort(),
      );
      expect(lines).toContain('encryption.keys[1].key: environment variable NUNQ_KEY_K2 is not set');
      expect(lines).toContain('server.prot: unknown field "prot"');
      // Values are never echoed: a misplaced secret must not end up on a terminal.
      expect(io.stderr()).not.toContain(brokenKey);
      expect(io.stderr()).not.toContain('mysql://db.example');
    });

    it('uses the env it is given for variable substitution', async () => {
      const io = fakeIo(cwd, { NUNQ_KEY_K2: generateKey() });
      expect(await main(['check-config', write('broken.yaml', broken)], io)).toBe(1);
      expect(io.stderr()).not.toContain('NUNQ_KEY_K2');
      expect(io.stderr()).toContain('encryption.keys[0].key: ');
    });

    it('reports a YAML syntax error with its position, not the line', async () => {
      const io = fakeIo(cwd);
      const file = write('syntax.yaml', 'auth:\n  jwt: { secret: "TOPSECRET-VALUE"\n  mode: [\n');
      expect(await main(['check-config', file], io)).toBe(1);
      expect(io.stderr()).toMatch(/^\(yaml\): syntax error: .+ at line \d+, column \d+\n/);
      expect(io.stderr()).not.toContain('TOPSECRET-VALUE');
    });

    it('reports a missing file and exits 1', async () => {
      const io = fakeIo(cwd);
      expect(await main(['check-config', join(cwd, 'absent.yaml')], io)).toBe(1);
      expect(io.stderr()).toMatch(/^\(file\): cannot read .*absent\.yaml \(ENOENT\)\n$/);
    });

    it('accepts a valid file and exits 0', async () => {
      const io = fakeIo(cwd, { JWT_SECRET: jwtSecret });
      const file = write('ok.yaml', validYaml());
      expect(await main(['check-config', file], io)).toBe(0);
      expect(io.stdout()).toBe(`${file}: valid (0 providers, 0 integrations, 0 MCP servers)\n`);
      expect(io.stderr()).toBe('');
    });

    it('resolves a relative FILE against the working directory it is given', async () => {
      const io = fakeIo(cwd, { JWT_SECRET: jwtSecret });
      write('relative.yaml', validYaml());
      expect(await main(['check-config', 'relative.yaml'], io)).toBe(0);
      expect(io.stderr()).toBe('');
    });

    it('needs exactly one FILE (exit 2)', async () => {
      const none = fakeIo(cwd);
      expect(await main(['check-config'], none)).toBe(2);
      expect(none.stderr()).toContain('check-config needs exactly one FILE');
      expect(await main(['check-config', 'a.yaml', 'b.yaml'], fakeIo(cwd))).toBe(2);
    });
  });

  describe('keys generate', () => {
    it('prints base64 of 32 fresh random bytes each time', async () => {
      const keys: string[] = [];
      for (let i = 0; i < 3; i++) {
        const io = fakeIo(cwd);
        expect(await main(['keys', 'generate'], io)).toBe(0);
        expect(io.stdout()).toMatch(/^[A-Za-z0-9+/]{43}=\n$/);
        keys.push(io.stdout().trim());
      }
      for (const key of keys) expect(Buffer.from(key, 'base64')).toHaveLength(32);
      expect(new Set(keys).size).toBe(3);
      // And the keyring takes it as it is.
      expect(Keyring.fromConfig({ activeKeyId: 'k', keys: [{ id: 'k', key: keys[0]! }] }).activeKeyId).toBe(
        'k',
      );
    });

    it('needs generate or rotate (exit 2)', async () => {
      const io = fakeIo(cwd);
      expect(await main(['keys'], io)).toBe(2);
      expect(await main(['keys', 'burn'], io)).toBe(2);
      expect(io.stderr()).toContain('keys needs generate or rotate');
    });
  });

  describe('token', () => {
    it('mints a JWT that verifies with the configured secret and carries sub and role', async () => {
      const file = write('nunq.yaml', validYaml());
      const io = fakeIo(cwd, { JWT_SECRET: jwtSecret });
      expect(await main(['token', '--user', 'alice', '--role', 'admin', '--config', file], io)).toBe(0);
      expect(io.stdout()).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+\n$/);
      const claims = await verify(io.stdout().trim(), jwtSecret);
      expect(claims).toMatchObject({ sub: 'alice', role: 'admin' });
      expect(claims.exp! - claims.iat!).toBe(12 * 3600);
      await expect(verify(io.stdout().trim(), 'another-secret-of-at-least-32-characters')).rejects.toThrow();
    });

    it('takes --name and --expires-in, and leaves out role when not asked', async () => {
      const file = write('nunq.yaml', validYaml());
      const io = fakeIo(cwd, { JWT_SECRET: jwtSecret });
      expect(
        await main(['token', '--user', 'bob', '--name', 'Bob B', '--expires-in', '5m', '--config', file], io),
      ).toBe(0);
      const claims = await verify(io.stdout().trim(), jwtSecret);
      expect(claims).toMatchObject({ sub: 'bob', name: 'Bob B' });
      expect(claims).not.toHaveProperty('role');
      expect(claims.exp! - claims.iat!).toBe(300);
    });

    it('sets the configured issuer and audience', async () => {
      const yaml = validYaml().replace(
        'jwt: { secret:',
        'jwt: { issuer: "https://platform.example", audience: nunq, secret:',
      );
      const io = fakeIo(cwd, { JWT_SECRET: jwtSecret });
      expect(await main(['token', '--user', 'carol', '--config', write('nunq.yaml', yaml)], io)).toBe(0);
      const claims = await verify(io.stdout().trim(), jwtSecret);
      expect(claims).toMatchObject({ sub: 'carol', iss: 'https://platform.example', aud: 'nunq' });
    });

    it('finds the config through $NUNQ_CONFIG and then ./nunq-connect.yaml', async () => {
      write('elsewhere.yaml', validYaml());
      const viaEnv = fakeIo(cwd, { JWT_SECRET: jwtSecret, NUNQ_CONFIG: 'elsewhere.yaml' });
      expect(await main(['token', '--user', 'dave'], viaEnv)).toBe(0);
      expect((await verify(viaEnv.stdout().trim(), jwtSecret)).sub).toBe('dave');

      const otherSecret = 'a-different-secret-for-the-local-file-0123';
      write('nunq-connect.yaml', validYaml());
      const local = fakeIo(cwd, { JWT_SECRET: otherSecret });
      expect(await main(['token', '--user', 'erin'], local)).toBe(0);
      expect((await verify(local.stdout().trim(), otherSecret)).sub).toBe('erin');
      expect(existsSync(join(cwd, '.nunq'))).toBe(false); // not demo mode
    });

    it('refuses a config without an HS256 secret (exit 1)', async () => {
      const yaml = `encryption:\n  activeKey: k1\n  keys:\n    - { id: k1, key: "${generateKey()}" }\nauth:\n  mode: dev\n`;
      const io = fakeIo(cwd);
      expect(await main(['token', '--user', 'x', '--config', write('dev.yaml', yaml)], io)).toBe(1);
      expect(io.stdout()).toBe('');
      expect(io.stderr()).toContain('auth.jwt.secret');
    });

    it('needs --user, and refuses unknown options (exit 2)', async () => {
      const noUser = fakeIo(cwd);
      expect(await main(['token'], noUser)).toBe(2);
      expect(noUser.stderr()).toContain('token needs --user ID');
      const unknown = fakeIo(cwd);
      expect(await main(['token', '--user', 'x', '--admin'], unknown)).toBe(2);
      expect(unknown.stderr()).toMatch(/^nunq-connect: .*--admin/);
    });

    it('signs for a demo that serve made here (secrets 0600 under ./.nunq/), creating nothing', async () => {
      // `serve` without a config made these; `token` only reads them.
      loadDemoSecrets(cwd);
      const file = join(cwd, '.nunq', 'demo-secrets.json');
      expect(statSync(file).mode & 0o777).toBe(0o600);
      expect(statSync(join(cwd, '.nunq')).mode & 0o077).toBe(0);
      const secrets = JSON.parse(readFileSync(file, 'utf8')) as { jwtSecret: string };
      const io = fakeIo(cwd);
      expect(await main(['token', '--user', 'x'], io)).toBe(0);
      expect((await verify(io.stdout().trim(), secrets.jwtSecret)).sub).toBe('x');
      expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(secrets);
    });

    it('uses the demo secrets of its own working directory', async () => {
      const other = mkdtempSync(join(tmpdir(), 'nunq-cli-'));
      try {
        loadDemoSecrets(cwd);
        loadDemoSecrets(other);
        const a = fakeIo(cwd);
        const b = fakeIo(other);
        expect(await main(['token', '--user', 'x'], a)).toBe(0);
        expect(await main(['token', '--user', 'x'], b)).toBe(0);
        const secretOf = (dir: string) =>
          (JSON.parse(readFileSync(join(dir, '.nunq', 'demo-secrets.json'), 'utf8')) as { jwtSecret: string })
            .jwtSecret;
        expect(secretOf(cwd)).not.toBe(secretOf(other));
        await expect(verify(a.stdout().trim(), secretOf(other))).rejects.toThrow();
      } finally {
        rmSync(other, { recursive: true, force: true });
      }
    });
  });

  describe('migrate', () => {
    it('applies the migrations to a SQLite file under the working directory, then says up to date', async () => {
      const file = write('nunq.yaml', validYaml());
      const first = fakeIo(cwd, { JWT_SECRET: jwtSecret });
      expect(await main(['migrate', '--config', file], first)).toBe(0);
      expect(first.stdout()).toMatch(/^applied: 0001_initial(, \w+)*\n$/);
      const dbFile = join(cwd, 'data', 'nunq.db');
      expect(existsSync(dbFile)).toBe(true);

      const second = fakeIo(cwd, { JWT_SECRET: jwtSecret });
      expect(await main(['migrate', '--config', file], second)).toBe(0);
      expect(second.stdout()).toBe('database is up to date\n');

      const store = openStore(`sqlite:${dbFile}`);
      try {
        const tables = await store.db.introspection.getTables();
        const names = tables.map((t) => t.name);
        for (const t of ['connections', 'sessions', 'providers', 'integrations', 'audit_log'])
          expect(names).toContain(t);
      } finally {
        await store.close();
      }
    });

    it('refuses without a config (only serve runs demo mode) and creates nothing', async () => {
      const io = fakeIo(cwd);
      expect(await main(['migrate'], io)).toBe(2);
      expect(io.stderr()).toContain('migrate needs a config file');
      expect(existsSync(join(cwd, '.nunq'))).toBe(false);
    });

    it('reports an unreachable database in one line and exits 1, without a stack trace', async () => {
      const yaml = validYaml().replace('sqlite:./data/nunq.db', 'postgres://postgres@127.0.0.1:1/nothing');
      const io = fakeIo(cwd, { JWT_SECRET: jwtSecret });
      const code = await main(['migrate', '--config', write('down.yaml', yaml)], io).catch(
        (error: unknown) => `main() rejected: ${String(error)}`,
      );
      expect(code).toBe(1);
      expect(io.stderr()).toMatch(/^nunq-connect: .+\n$/);
      expect(io.stderr()).not.toMatch(/\n\s+at /);
    });

    it('reports an invalid config (exit 1) and creates nothing', async () => {
      mkdirSync(join(cwd, 'sub'));
      const io = fakeIo(cwd);
      expect(await main(['migrate', '--config', write('sub/bad.yaml', 'nonsense: true\n')], io)).toBe(1);
      expect(io.stderr()).toContain('nonsense: unknown field "nonsense"');
      expect(existsSync(join(cwd, 'data'))).toBe(false);
      expect(existsSync(join(cwd, '.nunq'))).toBe(false);
    });
  });

  describe('usage', () => {
    it('answers an unknown command with exit 2 and the usage', async () => {
      const io = fakeIo(cwd);
      expect(await main(['frobnicate'], io)).toBe(2);
      expect(io.stderr()).toContain('unknown command "frobnicate"');
      expect(io.stderr()).toContain('Usage:');
      for (const command of [
        'serve',
        'check-config FILE',
        'migrate',
        'keys generate',
        'keys rotate',
        'token --user ID',
      ])
        expect(io.stderr()).toContain(`nunq-connect ${command}`);
      expect(io.stdout()).toBe('');
    });

    it('prints the usage for help (exit 0) and with no command (exit 1)', async () => {
      const help = fakeIo(cwd);
      expect(await main(['--help'], help)).toBe(0);
      expect(help.stdout()).toContain('Usage:');
      const none = fakeIo(cwd);
      expect(await main([], none)).toBe(1);
      expect(none.stdout()).toContain('Usage:');
    });
  });
});
