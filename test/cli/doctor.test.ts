/**
 * `nunq-connect doctor` as its own process (the bin's launcher logic run from the sources), against
 * real peers on loopback: panva's oidc-provider, the bundled OAuth-protected MCP server, a plain
 * HTTP server whose clock is off, real SQLite and PostgreSQL databases with sealed values in them.
 */
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkClock, skewOf } from '../../src/cli/doctor/clock.js';
import { generateKey, Keyring, Sealer } from '../../src/crypto/index.js';
import { type RunningMcpServer, startMcpServer } from '../../src/demo/mcp-server.js';
import { type RunningOidcProvider, startOidcProvider } from '../../src/demo/oidc-provider.js';
import { openStore } from '../../src/store/database.js';
import { migrateToLatest } from '../../src/store/migrate.js';
import { type RunningEntraServer, startEntraServer } from '../peers/entra-server.js';
import { createTestDatabase, databaseKinds, type TestDatabase } from '../support/databases.js';
import { freePort } from '../support/service.js';

const root = new URL('../..', import.meta.url).pathname;
const tsx = ['--import', pathToFileURL(join(root, 'node_modules/tsx/dist/loader.mjs')).href];
const cliEntry = join(root, 'test/support/cli-entry.ts');

const clientSecret = `doctor-client-secret-${randomBytes(8).toString('hex')}`;
const jwtSecret = `doctor-jwt-secret-${randomBytes(16).toString('hex')}`;
/** Put into every PostgreSQL URL (the test server trusts local connections, so it is not checked). */
const dbPassword = `doctor-db-password-${randomBytes(8).toString('hex')}`;
const keys = { k0: generateKey(), k1: generateKey(), k2: generateKey() };
/** Every secret the runs could leak, and every plaintext sealed into the databases. */
const secrets: string[] = [clientSecret, jwtSecret, dbPassword, ...Object.values(keys)];
/** Everything any doctor run printed. */
const printed: string[] = [];

const dir = mkdtempSync(join(tmpdir(), 'nunq-doctor-'));
let oidc: RunningOidcProvider;
let mcp: RunningMcpServer;
let entra: RunningEntraServer;
/** A server that answers anything with 204 and a `Date` header `offsetMs` off the real time. */
let skewed: Server;
let skewedUrl: string;
let offsetMs = 0;
let closedPort: number;

beforeAll(async () => {
  oidc = await startOidcProvider({
    clients: [
      {
        client_id: 'nunq',
        client_secret: clientSecret,
        redirect_uris: ['http://127.0.0.1:9/oauth/callback'],
        grant_types: ['authorization_code', 'refresh_token'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
  });
  mcp = await startMcpServer();
  entra = await startEntraServer({
    clients: [{ clientId: 'nunq', clientSecret, redirectUris: ['http://127.0.0.1:9/oauth/callback'] }],
  });
  skewed = createServer((_req, res) => {
    res.sendDate = false;
    res.writeHead(204, { date: new Date(Date.now() + offsetMs).toUTCString() });
    res.end();
  });
  await new Promise<void>((r) => skewed.listen(0, '127.0.0.1', r));
  const address = skewed.address();
  skewedUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  closedPort = await freePort();
}, 60_000);

afterAll(async () => {
  await oidc?.close();
  await mcp?.close();
  await entra?.close();
  await new Promise((r) => skewed?.close(r));
  rmSync(dir, { recursive: true, force: true });
});

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `nunq-connect doctor <args>` in `dir` with the key material in the environment. */
function doctor(args: string[], env: Record<string, string> = {}): Promise<Ran> {
  const childEnv: Record<string, string | undefined> = {
    ...process.env,
    KEY_K0: keys.k0,
    KEY_K1: keys.k1,
    KEY_K2: keys.k2,
    CLIENT_SECRET: clientSecret,
    JWT_SECRET: jwtSecret,
    ...env,
  };
  delete childEnv.NUNQ_CONFIG;
  const child = spawn(process.execPath, [...tsx, cliEntry, 'doctor', ...args], {
    cwd: dir,
    env: childEnv as NodeJS.ProcessEnv,
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
  return new Promise((done) =>
    child.once('close', (code) => {
      printed.push(stdout, stderr);
      done({ code, stdout, stderr });
    }),
  );
}

interface ConfigOptions {
  url: string;
  activeKey?: string;
  keyIds?: string[];
  issuer?: string;
  extraProviders?: string;
  allowLoopback?: boolean;
  mcpServers?: boolean;
  entraTenant?: string;
}

/** Writes a config file; every secret comes from the environment, as in a real deployment. */
function writeConfig(name: string, o: ConfigOptions): string {
  const file = join(dir, `${name}.yaml`);
  const url = new URL(o.url);
  if (url.protocol === 'postgres:') url.password = dbPassword;
  const keyIds = o.keyIds ?? ['k2', 'k1'];
  writeFileSync(
    file,
    `server:
  publicUrl: http://127.0.0.1:3999
database:
  url: "${o.url.startsWith('postgres') ? url.href : o.url}"
encryption:
  activeKey: ${o.activeKey ?? 'k2'}
  keys:
${keyIds.map((id) => `    - { id: ${id}, key: "\${KEY_${id.toUpperCase()}}" }`).join('\n')}
auth:
  mode: jwt
  jwt: { secret: "\${JWT_SECRET}" }
outbound:
  allow: ${o.allowLoopback === false ? '[]' : '["127.0.0.1/32"]'}
  timeoutMs: 3000
providers:
  - { id: demo, type: oidc, issuer: "${o.issuer ?? oidc.issuer}", clientId: nunq, clientSecret: "\${CLIENT_SECRET}" }
  - { id: entra, type: entra, tenant: "${o.entraTenant ?? entra.tenantId}", authority: "${entra.url}", clientId: nunq, clientSecret: "\${CLIENT_SECRET}" }
${o.extraProviders ?? ''}
${
  o.mcpServers === false
    ? ''
    : `mcpServers:
  - { id: tracker, name: Tracker, url: "${mcp.url}" }
`
}`,
  );
  return file;
}

/** Lines of the text report for one check. */
function lines(out: string, check: string): string[] {
  return out.split('\n').filter((l) => l.slice(6).startsWith(`${check}:`));
}

/** A migrated database holding sealed values: `under` maps key ids to how many values each seals. */
async function seededDatabase(
  kind: TestDatabase['kind'],
  under: Record<string, number>,
): Promise<TestDatabase> {
  const database = await createTestDatabase(kind);
  const store = openStore(database.url);
  try {
    await migrateToLatest(store);
    const now = Date.now();
    for (const [keyId, count] of Object.entries(under)) {
      const sealer = new Sealer(
        Keyring.fromConfig({
          activeKeyId: keyId,
          keys: [{ id: keyId, key: keys[keyId as keyof typeof keys] }],
        }),
      );
      for (let i = 0; i < count; i++) {
        const id = randomUUID();
        const plaintext = `access-token-${randomBytes(12).toString('hex')}`;
        secrets.push(plaintext);
        await store.db
          .insertInto('connections')
          .values({
            id,
            user_id: `user-${keyId}-${i}`,
            integration_id: 'i1',
            status: 'active',
            scopes: '[]',
            access_token_sealed: sealer.seal(plaintext, {
              table: 'connections',
              rowId: id,
              field: 'access_token_sealed',
            }),
            refresh_failures: 0,
            version: 0,
            created_at: now,
            updated_at: now,
          })
          .execute();
      }
    }
  } finally {
    await store.close();
  }
  return database;
}

describe.each(databaseKinds)('doctor on %s', (kind) => {
  const databases: TestDatabase[] = [];
  afterAll(async () => {
    await Promise.all(databases.map((d) => d.drop()));
  });
  const database = async (under: Record<string, number>) => {
    const d = await seededDatabase(kind, under);
    databases.push(d);
    return d;
  };

  it('passes a healthy deployment with exit 0, warning about a pending rotation and plain-http publicUrl', async () => {
    const db = await database({ k2: 3, k1: 2 });
    const ran = await doctor(['--config', writeConfig(`good-${kind}`, { url: db.url })]);
    expect(ran.stderr).toBe('');
    expect(ran.code).toBe(0);
    const out = ran.stdout;
    expect(lines(out, 'config')).toEqual([expect.stringMatching(/^ok {4}config: valid \(2 providers/)]);
    expect(lines(out, 'database')).toEqual([
      kind === 'postgres'
        ? expect.stringMatching(/^ok {4}database: postgres:\/\/[^:@/]+:\*\*\*@\S+ \(postgres\) answers$/)
        : expect.stringMatching(/^ok {4}database: sqlite:\/.*\/nunq\.db \(sqlite\) answers$/),
    ]);
    expect(lines(out, 'migrations')[0]).toMatch(/^ok {4}migrations: all \d+ applied, none pending/);
    expect(lines(out, 'keys')).toEqual([
      expect.stringMatching(/^ok {4}keys: active key "k2" present/),
      expect.stringMatching(
        /^warn {2}keys: 2 stored values are still sealed under an older key \(k1: 2\).*keys rotate/,
      ),
      expect.stringMatching(/^ok {4}keys: all 5 stored sealed values open/),
    ]);
    expect(lines(out, 'provider:demo')[0]).toMatch(/^ok {4}provider:demo: OIDC discovery .* issuer matches/);
    expect(lines(out, 'provider:entra')[0]).toMatch(
      /^ok {4}provider:entra: Entra tenant metadata for "[0-9a-f-]{36}" at http:\/\/127\.0\.0\.1:\d+ answered/,
    );
    expect(lines(out, 'mcp:tracker')[0]).toMatch(/^ok {4}mcp:tracker: discovery found authorization server/);
    expect(lines(out, 'clock')[0]).toMatch(/^ok {4}clock: within 30 s/);
    expect(lines(out, 'publicUrl')[0]).toMatch(
      /^warn {2}publicUrl: http:\/\/127\.0\.0\.1:3999 is plain http/,
    );
    expect(out).toMatch(/no failures \(2 warnings, \d+ ok\)/);
  }, 60_000);

  it('fails on stored values under a key no longer configured, naming the key, never a value', async () => {
    const db = await database({ k2: 1, k0: 2 });
    const ran = await doctor(['--config', writeConfig(`lost-key-${kind}`, { url: db.url })]);
    expect(ran.code).toBe(1);
    expect(lines(ran.stdout, 'keys')).toContainEqual(
      expect.stringMatching(
        /^FAIL {2}keys: 2 stored values are sealed under a key no longer configured \("k0"; connections\.access_token_sealed: 2\): put that key back/,
      ),
    );
    expect(ran.stdout).toMatch(/1 failure,/);
  }, 60_000);

  it('checks the providers and MCP servers an administrator added at run time too, but not disabled ones', async () => {
    const db = await database({ k2: 1 });
    const store = openStore(db.url);
    try {
      const now = Date.now();
      const row = { client_secret_sealed: null, client_secret_changed_at: null, source: 'admin' as const };
      const provider = (id: string, type: string, settings: object, enabled = 1) =>
        store.db
          .insertInto('providers')
          .values({
            ...row,
            id,
            type,
            settings: JSON.stringify(settings),
            enabled,
            created_at: now,
            updated_at: now,
          })
          .execute();
      await provider('console-oidc', 'oidc', { issuer: oidc.issuer, clientId: 'nunq' });
      const dead = `http://127.0.0.1:${closedPort}`;
      await provider('console-dead', 'oauth2', {
        authorizationEndpoint: `${dead}/authorize`,
        tokenEndpoint: `${dead}/token`,
        clientId: 'nunq',
      });
      await provider('console-off', 'oidc', { issuer: `${dead}/off`, clientId: 'nunq' }, 0);
      await store.db
        .insertInto('integrations')
        .values({
          ...row,
          id: 'console-mcp',
          kind: 'mcp',
          name: 'Console MCP',
          provider_id: null,
          settings: JSON.stringify({ url: mcp.url, scopes: [] }),
          enabled: 1,
          created_at: now,
          updated_at: now,
        })
        .execute();
    } finally {
      await store.close();
    }
    const ran = await doctor(['--config', writeConfig(`runtime-${kind}`, { url: db.url })]);
    expect(ran.code).toBe(1);
    const out = ran.stdout;
    expect(lines(out, 'provider:console-oidc (console)')[0]).toMatch(
      /^ok {4}.*OIDC discovery .* issuer matches/,
    );
    expect(lines(out, 'provider:console-dead (console)')[0]).toMatch(/^FAIL {2}/);
    expect(lines(out, 'mcp:console-mcp (console)')[0]).toMatch(
      /^ok {4}.*discovery found authorization server/,
    );
    expect(out).not.toContain('console-off');
    // The config file's own entries are still checked as before.
    expect(lines(out, 'provider:demo')[0]).toMatch(/^ok {4}provider:demo: OIDC discovery/);
  }, 60_000);

  it('fails on pending migrations, lists them, and applies none', async () => {
    const db = await database({ k2: 1 });
    const store = openStore(db.url);
    const last = await sql<{
      name: string;
    }>`select name from kysely_migration order by name desc limit 1`.execute(store.db);
    const name = last.rows[0]!.name;
    await sql`delete from kysely_migration where name = ${name}`.execute(store.db);
    try {
      const ran = await doctor(['--config', writeConfig(`pending-${kind}`, { url: db.url })]);
      expect(ran.code).toBe(1);
      expect(lines(ran.stdout, 'migrations')).toEqual([
        `FAIL  migrations: 1 pending (${name}): run \`nunq-connect migrate\` (serve also applies them at start); doctor applies nothing`,
      ]);
      const after = await sql`select name from kysely_migration where name = ${name}`.execute(store.db);
      expect(after.rows).toEqual([]);
    } finally {
      await store.close();
    }
  }, 60_000);
});

describe('doctor', () => {
  let url: string;
  const databases: TestDatabase[] = [];
  beforeAll(async () => {
    const db = await seededDatabase('sqlite', { k2: 1 });
    databases.push(db);
    url = db.url;
  });
  afterAll(async () => {
    await Promise.all(databases.map((d) => d.drop()));
  });

  it('fails a provider that does not answer, and one the outbound guard refuses, naming outbound.allow', async () => {
    const gone = writeConfig('gone', {
      url,
      issuer: `http://127.0.0.1:${closedPort}`,
      entraTenant: 'nope.example.com',
      mcpServers: false,
    });
    const ran = await doctor(['--config', gone]);
    expect(ran.code).toBe(1);
    expect(lines(ran.stdout, 'provider:demo')).toEqual([
      expect.stringMatching(/^FAIL {2}provider:demo: unreachable \(.*ECONNREFUSED.*\): check the URL/),
    ]);
    expect(lines(ran.stdout, 'provider:entra')).toEqual([
      expect.stringMatching(
        /^FAIL {2}provider:entra: Entra tenant metadata at .*\/nope\.example\.com\/v2\.0\/\.well-known\/openid-configuration answered HTTP 400 .*check providers\.tenant/,
      ),
    ]);

    // https to a loopback address: only the outbound guard stands between it and the connection attempt.
    const guarded = `  - { id: guarded, type: oauth2, authorizationEndpoint: "https://127.0.0.1:${closedPort}/authorize", tokenEndpoint: "https://127.0.0.1:${closedPort}/token", clientId: nunq }`;
    const refused = await doctor([
      '--config',
      writeConfig('refused', { url, allowLoopback: false, extraProviders: guarded }),
    ]);
    expect(refused.code).toBe(1);
    expect(lines(refused.stdout, 'provider:guarded')).toEqual([
      `FAIL  provider:guarded: outbound request to 127.0.0.1 refused by policy: a private or loopback address is reached only when outbound.allow lists it`,
    ]);
    expect(lines(refused.stdout, 'provider:demo')[0]).toMatch(
      /^FAIL {2}provider:demo: .*plain http.*outbound\.allow/,
    );
    expect(lines(refused.stdout, 'mcp:tracker')[0]).toMatch(/^FAIL {2}mcp:tracker: .*refused/);
  }, 60_000);

  it('fails on a missing SQLite file without creating it', async () => {
    const file = join(dir, 'absent', 'nunq.db');
    const ran = await doctor([
      '--config',
      writeConfig('absent', { url: `sqlite:${file}`, mcpServers: false }),
    ]);
    expect(ran.code).toBe(1);
    expect(lines(ran.stdout, 'database')).toEqual([
      `FAIL  database: sqlite:${file} does not exist: run \`nunq-connect migrate\` (or start serve) to create it, or fix database.url`,
    ]);
    expect(lines(ran.stdout, 'keys')[1]).toMatch(/^warn {2}keys: stored values not checked/);
    expect(existsSync(join(dir, 'absent'))).toBe(false);
  }, 60_000);

  it('fails a bad config with one `path: message` line per problem and checks nothing else', async () => {
    const file = writeConfig('bad', { url, activeKey: 'k9' });
    writeFileSync(file, `${readFileSync(file, 'utf8')}bogus: 1\n`);
    const ran = await doctor(['--config', file]);
    expect(ran.code).toBe(1);
    expect(lines(ran.stdout, 'config')).toEqual([
      'FAIL  config: encryption.activeKey: must be the id of one of encryption.keys',
      'FAIL  config: bogus: unknown field "bogus"',
      'warn  config: the other checks were skipped: fix the config first (`nunq-connect check-config FILE`)',
    ]);
    expect(ran.stdout).not.toMatch(/database:|provider:/);

    const none = await doctor([]);
    expect(none.code).toBe(1);
    expect(lines(none.stdout, 'config')[0]).toMatch(/^FAIL {2}config: no config file/);
  }, 60_000);

  it("compares the clock with the providers' Date headers: warn above 30 s, fail above 5 min", async () => {
    const file = writeConfig('clock', {
      url,
      mcpServers: false,
      extraProviders: `  - { id: legacy, type: oauth2, authorizationEndpoint: "${skewedUrl}/authorize", tokenEndpoint: "${skewedUrl}/token", clientId: nunq }`,
    });
    offsetMs = -10 * 60_000;
    const late = await doctor(['--config', file]);
    expect(late.code).toBe(1);
    expect(lines(late.stdout, 'provider:legacy')[0]).toMatch(
      /^ok {4}provider:legacy: authorization and token endpoints answer \(HTTP 204, 204\)/,
    );
    expect(lines(late.stdout, 'clock')).toEqual([
      expect.stringMatching(
        /^FAIL {2}clock: the local clock is about 60\d s ahead of the clock of provider legacy: .*NTP/,
      ),
    ]);

    offsetMs = 2 * 60_000;
    const drifting = await doctor(['--config', file, '--json']);
    expect(drifting.code).toBe(0);
    const report = JSON.parse(drifting.stdout) as {
      ok: boolean;
      summary: Record<string, number>;
      checks: Array<{ check: string; status: string; message: string }>;
    };
    expect(report.ok).toBe(true);
    expect(report.summary.fail).toBe(0);
    expect(report.checks.find((c) => c.check === 'clock')).toEqual({
      check: 'clock',
      status: 'warn',
      message: expect.stringMatching(/about 1[12]\d s behind the clock of provider legacy/),
    });
    expect(report.checks.map((c) => c.check)).toEqual([
      'config',
      'database',
      'migrations',
      'keys',
      'keys',
      'provider:demo',
      'provider:entra',
      'provider:legacy',
      'clock',
      'publicUrl',
    ]);
  }, 60_000);
});

describe('every doctor run above', () => {
  it('printed no secret: no key, client secret, JWT secret, stored token or sealed value', () => {
    const all = printed.join('\n');
    expect(printed.length).toBeGreaterThanOrEqual(2 * 11);
    for (const secret of secrets) expect(all).not.toContain(secret);
    expect(all).not.toMatch(/v1\.k[0-9]\.[A-Za-z0-9_-]{20,}/);
  });
});

describe('the clock check', () => {
  const at = (date: number, sentAt: number, receivedAt: number) => ({
    source: 'provider p',
    date: new Date(date).toUTCString(),
    sentAt,
    receivedAt,
  });
  const t = Date.UTC(2026, 0, 1, 12, 0, 0);

  it('does not count what the whole-second Date header and the round trip can explain', () => {
    expect(skewOf(at(t, t, t + 400))!.skewMs).toBe(0);
    // 2 s behind, minus half a second of Date rounding and half the 200 ms round trip.
    expect(skewOf(at(t - 2000, t, t + 200))).toEqual({ skewMs: 1000, aheadMs: -1600 });
    expect(skewOf({ source: 's', date: 'not a date', sentAt: t, receivedAt: t })).toBeUndefined();
  });

  it.each([
    [0, 'ok'],
    [29_000, 'ok'],
    [45_000, 'warn'],
    [-45_000, 'warn'],
    [4 * 60_000, 'warn'],
    [6 * 60_000, 'fail'],
    [-6 * 60_000, 'fail'],
  ])('a provider %i ms off the local clock: %s', (off, status) => {
    expect(checkClock([at(t + off, t, t)], 1).status).toBe(status);
  });

  it('warns when no provider answered with a Date header, and is ok with no providers', () => {
    expect(checkClock([], 2).status).toBe('warn');
    expect(checkClock([], 0).status).toBe('ok');
  });
});
