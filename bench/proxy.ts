/**
 * Proxy benchmark, as deployed: `GET /api/v1/connections/:id/proxy/items` with a bearer JWT on
 * `nunq-connect serve` started by its bin (`node bin/nunq-connect.js serve --config FILE`, no
 * node flags but those the bin sets itself, logging at its default level into a pipe that a
 * separate reader process drains), against a bare pass-through proxy (node:http + an undici Pool,
 * a fixed bearer header, no auth, no logging). Both forward to one static upstream that does no
 * work (a constant-time compare of the bearer, a fixed JSON body). Every part is its own process:
 * ours (and its log reader, `wc -lc`), the bare proxy, the upstream; this process is the load
 * generator (undici Pool, fixed concurrency). Rounds alternate over the targets in rotating order
 * so each ratio is paired within a cycle; CPU per request of every process comes from
 * `/proc/<pid>/stat` deltas around each round.
 *
 * Ours runs on SQLite and on PostgreSQL, each on a fresh database; connections are seeded in the
 * database with the service's own sealer (`--connections N`: N users with one connection each,
 * requests spread over them in turn: 5,000 rows and tokens in the per-instance row cache, which
 * the database's change feed keeps current, instead of one). The service is built first (`tsc -p tsconfig.build.json`, `--no-build` skips it).
 *
 * Run: `node --import tsx bench/proxy.ts [--seconds 10] [--cycles 3] [--concurrency 64]
 *       [--warmup-seconds 2] [--connections 1] [--only sqlite|postgres] [--no-build]
 *       [--bare-flags ''] [--ours-flags ''] [--profile [--top 30]]`
 * `--ours-flags` starts ours with node flags (an experiment: a semi-space size given there
 * stops the bin's own re-exec, e.g. `--ours-flags --max-semi-space-size=16` for V8's default).
 * `--profile` then runs ours (SQLite) once more under `node --cpu-prof` for one round and
 * prints its hot spots (the profile also holds start-up and shutdown).
 */
import { execFileSync, spawn } from 'node:child_process';
import { timingSafeEqual } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pipeline } from 'node:stream';
import { type Dispatcher, Pool } from 'undici';
import { generateKey, Keyring, Sealer } from '../src/crypto/index.js';
import { mintToken } from '../src/identity/jwt.js';
import { type DatabaseKind, openStore } from '../src/store/database.js';
import { createTestDatabase, type TestDatabase } from '../test/support/databases.js';
import { freePort } from '../test/support/service.js';
import { processCpuUs, processTree, treeCpuUs } from './proc.js';
import {
  benchRateLimits,
  type ChildHandle,
  flag,
  forkChild,
  isMainModule,
  machineLine,
  markdownTable,
  median,
  numberOption,
  option,
  out,
  percentile,
  serveParent,
  sleep,
  summarizeCpuProfile,
} from './support.js';

/** The acceptance targets: our throughput at least this fraction of the bare proxy's. */
export const PROXY_TARGET_HOT = 0.9;
export const PROXY_TARGET_COLD = 0.8;

const thisFile = new URL(import.meta.url).pathname;
const root = resolve(new URL('..', import.meta.url).pathname);
const bin = join(root, 'bin', 'nunq-connect.js');
const jwtSecret = 'bench-jwt-secret-0123456789abcdef-0123456789';
/** What the static upstream answers, and what every target must pass on unchanged. */
const itemsBody = JSON.stringify({
  items: Array.from({ length: 5 }, (_, n) => ({ id: n + 1, name: `item ${n + 1}`, done: n % 2 === 0 })),
});

// ---------------------------------------------------------------------------------------------
// Children: the static upstream and the bare proxy (forked, IPC only to start them).

/** `GET /items` → the fixed body if the bearer is the expected one (constant-time), else 401. */
function serveUpstream(): void {
  serveParent({
    async start(payload) {
      const expected = Buffer.from(`Bearer ${(payload as { token: string }).token}`);
      const body = Buffer.from(itemsBody);
      const server = createServer((req, res) => {
        const given = Buffer.from(req.headers.authorization ?? '');
        if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
          res.writeHead(401, { 'content-type': 'application/json', 'content-length': 2 }).end('{}');
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length }).end(body);
      });
      server.keepAliveTimeout = 120_000;
      await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
      return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
    },
  });
}

/** `GET /proxy/<path>` → `GET <upstream>/<path>` with a fixed bearer header; nothing else. */
function serveBare(): void {
  serveParent({
    async start(payload) {
      const o = payload as { upstream: string; token: string };
      const upstream = new Pool(o.upstream);
      const headers = { authorization: `Bearer ${o.token}` };
      const server = createServer((req, res) => {
        upstream
          .request({
            path: (req.url ?? '/').replace(/^\/proxy/, '') || '/',
            method: (req.method ?? 'GET') as Dispatcher.HttpMethod,
            headers,
          })
          .then(
            (up) => {
              // What a pass-through keeps of the answer: its type and, the body passing undecoded, its length.
              res.writeHead(up.statusCode, {
                'content-type': String(up.headers['content-type'] ?? 'application/octet-stream'),
                ...(up.headers['content-length'] === undefined
                  ? {}
                  : { 'content-length': String(up.headers['content-length']) }),
                'cache-control': 'no-store',
              });
              pipeline(up.body, res, () => {});
            },
            () => res.writeHead(502).end(),
          );
      });
      server.keepAliveTimeout = 120_000;
      await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
      return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
    },
  });
}

// ---------------------------------------------------------------------------------------------
// Ours: the bin as a user runs it, its stdout piped into a reader process.

export interface Ours {
  /** The bin's process and what it started (the re-executed server), for CPU accounting. */
  pids: number[];
  readerPid: number;
  url: string;
  /** Stops the service (SIGTERM) and returns what the reader counted: lines and bytes of log. */
  stop(): Promise<{ lines: number; bytes: number; code: number | null }>;
}

/** Starts `node bin/nunq-connect.js serve --config <file>` with the default log level. */
export async function startOurs(configFile: string, port: number, nodeFlags: string[] = []): Promise<Ours> {
  const env: Record<string, string | undefined> = { ...process.env };
  // As a user runs it: no inherited loader or level, the port from the config.
  delete env.NODE_OPTIONS;
  delete env.LOG_LEVEL;
  delete env.PORT;
  delete env.NUNQ_CONFIG;
  const service = spawn(process.execPath, [...nodeFlags, bin, 'serve', '--config', configFile], {
    cwd: root,
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const reader = spawn('wc', ['-lc'], { stdio: [service.stdout!, 'pipe', 'inherit'] });
  let counted = '';
  reader.stdout!.on('data', (d: Buffer) => {
    counted += String(d);
  });
  const readerDone = new Promise<void>((done) => reader.once('exit', () => done()));
  const serviceDone = new Promise<number | null>((done) => service.once('exit', (code) => done(code)));
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (service.exitCode !== null) throw new Error(`serve exited with ${service.exitCode}`);
    try {
      if ((await fetch(`${url}/healthz`)).ok) break;
    } catch {}
    if (i > 300) throw new Error('serve did not come up in 30 s');
    await sleep(100);
  }
  return {
    pids: processTree(service.pid!),
    readerPid: reader.pid!,
    url,
    async stop() {
      service.kill('SIGTERM');
      const timer = setTimeout(() => service.kill('SIGKILL'), 15_000);
      const code = await serviceDone;
      clearTimeout(timer);
      await readerDone;
      const [lines, bytes] = counted.trim().split(/\s+/).map(Number);
      return { lines: lines ?? 0, bytes: bytes ?? 0, code };
    },
  };
}

/** The service's config for one database: a static OAuth 2 provider whose API is the upstream. */
function oursConfig(port: number, databaseUrl: string, upstream: string, key: string): unknown {
  return {
    server: { host: '127.0.0.1', port, publicUrl: `http://127.0.0.1:${port}` },
    database: { url: databaseUrl },
    encryption: { activeKey: 'k1', keys: [{ id: 'k1', key }] },
    auth: { mode: 'jwt', jwt: { secret: jwtSecret } },
    rateLimits: benchRateLimits,
    outbound: { allow: ['127.0.0.0/8'] },
    providers: [
      {
        id: 'static',
        type: 'oauth2',
        clientId: 'nunq',
        clientSecret: 'bench-client-secret-0123456789',
        authorizationEndpoint: `${upstream}/authorize`,
        tokenEndpoint: `${upstream}/token`,
      },
    ],
    integrations: [{ id: 'items', name: 'Items', provider: 'static', api: { baseUrl: upstream } }],
  };
}

/**
 * Inserts a connection per user for `items`, sealed with the service's own `Sealer` under the
 * config's key: the upstream's access token, valid for a day, no refresh token, nothing due.
 * Returns the connection ids in the order of `users`. (The MCP gateway bench seeds its own
 * integration and expiry through `options`.)
 */
export async function seedConnections(
  databaseUrl: string,
  key: string,
  token: string,
  users: string[],
  options: { integrationId?: string; validForMs?: number } = {},
): Promise<string[]> {
  const sealer = new Sealer(Keyring.fromConfig({ activeKeyId: 'k1', keys: [{ id: 'k1', key }] }));
  const store = openStore(databaseUrl);
  const now = Date.now();
  const ids: string[] = [];
  try {
    for (let at = 0; at < users.length; at += 500) {
      const rows = users.slice(at, at + 500).map((user) => {
        const id = crypto.randomUUID();
        ids.push(id);
        return {
          id,
          user_id: user,
          integration_id: options.integrationId ?? 'items',
          status: 'active' as const,
          status_reason: null,
          account_id: `account-${user}`,
          account_name: user,
          account_email: null,
          scopes: '[]',
          access_token_sealed: sealer.seal(token, {
            table: 'connections',
            rowId: id,
            field: 'access_token_sealed',
          }),
          refresh_token_sealed: null,
          id_token_sealed: null,
          token_type: 'Bearer',
          access_token_expires_at: now + (options.validForMs ?? 24 * 3600_000),
          last_refreshed_at: null,
          next_refresh_at: null,
          refresh_failures: 0,
          lease_owner: null,
          lease_until: null,
          version: 1,
          created_at: now,
          updated_at: now,
        };
      });
      await store.db.insertInto('connections').values(rows).execute();
    }
  } finally {
    await store.close();
  }
  return ids;
}

// ---------------------------------------------------------------------------------------------
// The load generator.

interface Target {
  name: string;
  /** Processes whose CPU counts as the server's (ours: the bin and its re-executed server). */
  serverPids: number[];
  /** The log reader (ours only). */
  readerPid?: number;
  requests: Array<{ path: string; headers: Record<string, string> }>;
  pool: Pool;
  /** Requests sent so far (warm-up included), to compare with the log lines read. */
  sent: number;
}

interface RoundResult {
  ok: number;
  errors: number;
  elapsedMs: number;
  latencies: Float64Array;
  /** CPU µs during the round: the server, its log reader, the upstream, this load generator. */
  cpu: { server: number; reader: number; upstream: number; loadgen: number };
}

/** `concurrency` loops, each one request in flight at a time, for `ms` or `count` requests. */
async function runRound(
  target: Target,
  upstreamPid: number,
  concurrency: number,
  ms: number,
  count = Number.POSITIVE_INFINITY,
): Promise<RoundResult> {
  const sample = () => ({
    server: treeCpuUs(target.serverPids),
    reader: target.readerPid === undefined ? 0 : processCpuUs(target.readerPid),
    upstream: processCpuUs(upstreamPid),
    loadgen: processCpuUs(process.pid),
  });
  const before = sample();
  const latencies: number[] = [];
  let errors = 0;
  let next = 0;
  const started = performance.now();
  const deadline = started + ms;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline && next < count) {
        const t0 = performance.now();
        try {
          const { path, headers } = target.requests[next++ % target.requests.length]!;
          const r = await target.pool.request({ path, method: 'GET', headers });
          await r.body.arrayBuffer();
          if (r.statusCode === 200) latencies.push(performance.now() - t0);
          else errors++;
        } catch {
          errors++;
        }
      }
    }),
  );
  const elapsedMs = performance.now() - started;
  const after = sample();
  target.sent += latencies.length + errors;
  return {
    ok: latencies.length,
    errors,
    elapsedMs,
    latencies: Float64Array.from(latencies),
    cpu: {
      server: after.server - before.server,
      reader: after.reader - before.reader,
      upstream: after.upstream - before.upstream,
      loadgen: after.loadgen - before.loadgen,
    },
  };
}

const rps = (r: RoundResult) => r.ok / (r.elapsedMs / 1000);
const perRequest = (r: RoundResult, part: keyof RoundResult['cpu']) =>
  r.cpu[part] / Math.max(1, r.ok + r.errors);

/** Builds the service once, so the bin runs what the sources say (`dist/`). */
export function build(): void {
  execFileSync(
    process.execPath,
    [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
    {
      cwd: root,
      stdio: 'inherit',
    },
  );
}

async function main(): Promise<void> {
  const seconds = numberOption('seconds', 10);
  const cycles = numberOption('cycles', 3);
  const concurrency = numberOption('concurrency', 64);
  const warmupSeconds = numberOption('warmup-seconds', 2);
  const spread = numberOption('connections', 1);
  const only = option('only', '');
  // Node flags for ours, for experiments only: a semi-space size here stops the bin's own re-exec.
  const oursFlags = option('ours-flags', '')
    .split(' ')
    .filter((f) => f !== '');
  const bareFlags = option('bare-flags', '')
    .split(' ')
    .filter((f) => f !== '');
  const kinds = (['sqlite', 'postgres'] as DatabaseKind[]).filter((k) => only === '' || k === only);
  const target = spread >= 1000 ? PROXY_TARGET_COLD : PROXY_TARGET_HOT;
  if (!flag('no-build')) build();

  out(`# Proxy benchmark (as deployed)\n\n${machineLine()}, ${new Date().toISOString().slice(0, 10)}\n\n`);
  out(
    `${concurrency} requests in flight (undici Pool, ${concurrency} connections), ${seconds} s per round, ` +
      `${cycles} cycles over the targets in rotating order, after a ${warmupSeconds} s warm-up each. ` +
      (spread === 1
        ? 'Ours: one connection (hot). '
        : `Ours: ${spread} connections of ${spread} users, requests spread over them in turn (5,000 cached rows, each used once per 5,000 requests). `) +
      `Ours is \`node ${oursFlags.length === 0 ? '' : `${oursFlags.join(' ')} `}bin/nunq-connect.js serve --config FILE\`` +
      `${oursFlags.length === 0 ? ' (no node flags of ours; the bin sets its own)' : ' (EXPERIMENT: node flags given)'}, ` +
      'logging at its default level into a pipe drained by `wc -lc`; the bare proxy runs with ' +
      `\`${bareFlags.join(' ') || 'no node flags'}\`. req/s and CPU per request are medians over rounds, ` +
      'p50/p99 over all requests; ratios are paired per cycle (median, min–max). ' +
      `Target: req/s ours/bare ≥ ${target}×.\n`,
  );

  const tmp = mkdtempSync(join(tmpdir(), 'nunq-bench-proxy-'));
  const children: ChildHandle[] = [];
  const pools: Pool[] = [];
  const ours: Array<{ name: string; handle: Ours; database: TestDatabase }> = [];
  try {
    const upstreamToken = `static-${crypto.randomUUID()}`;
    const upstreamChild = forkChild(thisFile, ['--role', 'upstream']);
    children.push(upstreamChild);
    const { url: upstream } = await upstreamChild.call<{ url: string }>('start', { token: upstreamToken });
    const users = Array.from({ length: spread }, (_, n) => `bench-user-${n + 1}`);
    const jwts = await Promise.all(users.map((sub) => mintToken(jwtSecret, { sub }, { expiresIn: '4h' })));

    const targets: Target[] = [];
    const key = generateKey();
    for (const kind of kinds) {
      const database = await createTestDatabase(kind);
      const port = await freePort();
      const file = join(tmp, `nunq-${kind}.yaml`);
      writeFileSync(file, JSON.stringify(oursConfig(port, database.url, upstream, key)), { mode: 0o600 });
      const handle = await startOurs(file, port, oursFlags);
      const name = `ours (${kind === 'sqlite' ? 'SQLite' : 'PostgreSQL'})`;
      ours.push({ name, handle, database });
      const ids = await seedConnections(database.url, key, upstreamToken, users);
      targets.push({
        name,
        serverPids: handle.pids,
        readerPid: handle.readerPid,
        requests: ids.map((id, n) => ({
          path: `/api/v1/connections/${id}/proxy/items`,
          headers: { authorization: `Bearer ${jwts[n]!}` },
        })),
        pool: new Pool(handle.url, { connections: concurrency }),
        sent: 0,
      });
    }
    const bareChild = forkChild(thisFile, ['--role', 'bare'], [...process.execArgv, ...bareFlags]);
    children.push(bareChild);
    const { url: bareUrl } = await bareChild.call<{ url: string }>('start', {
      upstream,
      token: upstreamToken,
    });
    targets.push({
      name: 'bare node:http',
      serverPids: [bareChild.pid],
      requests: [{ path: '/proxy/items', headers: {} }],
      pool: new Pool(bareUrl, { connections: concurrency }),
      sent: 0,
    });
    pools.push(...targets.map((t) => t.pool));

    // Same answer everywhere, or the comparison means nothing.
    for (const t of targets) {
      const r = await t.pool.request({ ...t.requests.at(-1)!, method: 'GET' });
      const text = await r.body.text();
      if (r.statusCode !== 200 || text !== itemsBody) {
        throw new Error(`${t.name}: HTTP ${r.statusCode} ${text.slice(0, 200)}`);
      }
      t.sent++;
    }

    // Warm-up: every request once (each user's JWT verified, as a platform's repeated token would
    // be), then a few seconds; the rows stay cold, as the row cache keeps them only 1 s.
    for (const t of targets) {
      await runRound(t, upstreamChild.pid, concurrency, 600_000, t.requests.length);
      await runRound(t, upstreamChild.pid, concurrency, warmupSeconds * 1000);
    }
    const rounds = new Map(targets.map((t) => [t.name, [] as RoundResult[]]));
    for (let cycle = 0; cycle < cycles; cycle++) {
      const order = targets.map((_, i) => targets[(i + cycle) % targets.length]!);
      for (const t of order) {
        rounds.get(t.name)!.push(await runRound(t, upstreamChild.pid, concurrency, seconds * 1000));
        await sleep(200);
      }
    }
    out(`\n${resultTables(targets, rounds, target)}\n\n`);

    for (const o of ours.splice(0)) {
      const t = targets.find((x) => x.name === o.name)!;
      const read = await o.handle.stop();
      await o.database.drop();
      out(
        `${o.name}: the reader read ${read.lines} log lines (${(read.bytes / Math.max(1, read.lines)).toFixed(0)} ` +
          `bytes each) for ${t.sent} requests; serve exited with ${read.code}.\n`,
      );
    }
    if (flag('profile')) {
      await profileOurs(tmp, upstream, upstreamChild.pid, upstreamToken, {
        concurrency,
        seconds,
        users,
        jwts,
      });
    }
  } finally {
    for (const pool of pools) await pool.close().catch(() => {});
    for (const o of ours) {
      await o.handle.stop().catch(() => {});
      await o.database.drop().catch(() => {});
    }
    for (const child of children) await child.close();
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** One round on ours (SQLite, the run's connections) with every node process under `--cpu-prof`. */
async function profileOurs(
  tmp: string,
  upstream: string,
  upstreamPid: number,
  token: string,
  o: { concurrency: number; seconds: number; users: string[]; jwts: string[] },
): Promise<void> {
  const { concurrency, seconds } = o;
  const dir = join(tmp, 'profiles');
  const database = await createTestDatabase('sqlite');
  const key = generateKey();
  const port = await freePort();
  const file = join(tmp, 'nunq-profile.yaml');
  writeFileSync(file, JSON.stringify(oursConfig(port, database.url, upstream, key)), { mode: 0o600 });
  const handle = await startOurs(file, port, ['--cpu-prof', `--cpu-prof-dir=${dir}`]);
  const pool = new Pool(handle.url, { connections: concurrency });
  try {
    const ids = await seedConnections(database.url, key, token, o.users);
    const t: Target = {
      name: 'ours (SQLite, profiled)',
      serverPids: handle.pids,
      requests: ids.map((id, n) => ({
        path: `/api/v1/connections/${id}/proxy/items`,
        headers: { authorization: `Bearer ${o.jwts[n]!}` },
      })),
      pool,
      sent: 0,
    };
    await runRound(t, upstreamPid, concurrency, 600_000, t.requests.length);
    await runRound(t, upstreamPid, concurrency, 2000);
    const r = await runRound(t, upstreamPid, concurrency, seconds * 1000);
    await handle.stop();
    // The serving process is the busiest: its profile is the largest file.
    const profiles = readdirSync(dir).map((f) => join(dir, f));
    const largest = trimProfile(
      profiles.sort((a, b) => statSync(b).size - statSync(a).size)[0]!,
      seconds * 1e6,
    );
    out(
      `\n## CPU profile of ours (SQLite, ${o.users.length} connections) over its last ${seconds} s round (start-up and shutdown cut off) ` +
        `(${Math.round(rps(r))} req/s, ${Math.round(perRequest(r, 'server'))} µs CPU per request while profiled)\n\n` +
        `${summarizeCpuProfile(largest, Number(option('top', '30')))}\n`,
    );
  } finally {
    await pool.close();
    await handle.stop().catch(() => {});
    await database.drop();
  }
}

/**
 * Keeps the samples of the last `windowUs` before the profile's end, less the shutdown's
 * half second: the measured round, without start-up, warm-up and shutdown. Returns a new file.
 */
export function trimProfile(file: string, windowUs: number): string {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as {
    endTime: number;
    startTime: number;
    samples: number[];
    timeDeltas: number[];
  };
  const to = profile.endTime - 500_000;
  const from = to - windowUs;
  const samples: number[] = [];
  const timeDeltas: number[] = [];
  let t = profile.startTime;
  profile.samples.forEach((sample, i) => {
    t += profile.timeDeltas[i] ?? 0;
    if (t >= from && t <= to) {
      samples.push(sample);
      timeDeltas.push(profile.timeDeltas[i] ?? 0);
    }
  });
  const trimmed = `${file}.trimmed.cpuprofile`;
  writeFileSync(trimmed, JSON.stringify({ ...profile, samples, timeDeltas }));
  return trimmed;
}

/** The throughput/latency/CPU table and the per-cycle ratios of ours against the bare proxy. */
function resultTables(targets: Target[], rounds: Map<string, RoundResult[]>, target: number): string {
  const bare = rounds.get('bare node:http')!;
  const main = markdownTable(
    [
      'target',
      'req/s',
      'p50 ms',
      'p99 ms',
      'errors',
      'server CPU µs/req',
      'log reader µs/req',
      'upstream µs/req',
      'load generator µs/req',
    ],
    targets.map((t) => {
      const rs = rounds.get(t.name)!;
      const all = Float64Array.from(rs.flatMap((r) => [...r.latencies])).sort();
      const cpu = (part: keyof RoundResult['cpu']) => Math.round(median(rs.map((r) => perRequest(r, part))));
      return [
        t.name,
        Math.round(median(rs.map(rps))),
        percentile(all, 50).toFixed(1),
        percentile(all, 99).toFixed(1),
        rs.reduce((n, r) => n + r.errors, 0),
        cpu('server'),
        t.readerPid === undefined ? '–' : cpu('reader'),
        cpu('upstream'),
        cpu('loadgen'),
      ];
    }),
    'lrrrrrrrr',
  );
  const paired = (rs: RoundResult[], f: (r: RoundResult) => number) => {
    const ratios = rs.map((r, i) => f(r) / f(bare[i]!));
    return {
      median: median(ratios),
      text: `${median(ratios).toFixed(2)}× (${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)})`,
    };
  };
  const ratioRows = targets
    .filter((t) => t.name.startsWith('ours'))
    .map((t) => {
      const rs = rounds.get(t.name)!;
      const throughput = paired(rs, rps);
      return [
        `${t.name} / bare node:http`,
        `${throughput.text}${throughput.median < target ? ' ⚠' : ''}`,
        paired(rs, (r) => perRequest(r, 'server')).text,
        paired(rs, (r) => perRequest(r, 'server') + perRequest(r, 'reader')).text,
      ];
    });
  const ratios = markdownTable(
    [
      'ratio',
      `req/s (target ≥ ${target.toFixed(2)}×)`,
      'server CPU per request',
      'server + log reader CPU per request',
    ],
    ratioRows,
    'lrrr',
  );
  return `${main}\n\n${ratios}`;
}

if (isMainModule(import.meta.url)) {
  const role = option('role', '');
  if (role === 'upstream') serveUpstream();
  else if (role === 'bare') serveBare();
  else await main();
}
