/**
 * Proxy benchmark: `GET /api/v1/connections/:id/proxy/items` with a bearer JWT (ours: identity,
 * connection row through the 1 s row cache, token, guarded outbound agent, header filtering, an
 * access-log line; `--connections N` spreads requests over N users' connections) against bare
 * pass-through proxies with no auth and a fixed bearer header (node:http + undici, and Fastify +
 * undici), all forwarding to the same demo API; plus a diagnostic target, bare Fastify with our
 * guarded outbound agent (`--no-diagnostic` drops it). Every server runs in its own process; this
 * process is the load generator (undici Pool, fixed concurrency), running rounds interleaved over
 * the targets so each ratio is paired within a cycle.
 *
 * Run: `node --import tsx bench/proxy.ts [--seconds 10] [--cycles 3] [--concurrency 64]
 *       [--warmup-seconds 2] [--log-level info] [--no-diagnostic] [--profile] [--top 30]
 *       [--profile-target 'ours (SQLite)'] [--heap-profile] [--server-flags '--max-semi-space-size=32']`
 * `--profile` then runs one more round on one target (our SQLite service unless named) with the V8 sampling profiler on
 * (the same data as `--cpu-prof`, limited to that round) and prints its hot spots.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream';
import Fastify from 'fastify';
import { type Dispatcher, Pool } from 'undici';
import type { AppContext } from '../src/http/context.js';
import { mintToken } from '../src/identity/jwt.js';
import { createOutbound } from '../src/oauth/outbound.js';
import type { DatabaseKind } from '../src/store/database.js';
import { createTestDatabase } from '../test/support/databases.js';
import { freePort, startTestService, testJwtSecret } from '../test/support/service.js';
import {
  type ChildHandle,
  catalogFor,
  connectThroughFlow,
  discardingLogger,
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
  serverNodeFlags,
  sleep,
  startPeersProcess,
  summarizeCpuProfile,
} from './support.js';

/** The acceptance target: our throughput at least this fraction of the bare proxy's. */
export const PROXY_TARGET_RATIO = 0.9;

const thisFile = new URL(import.meta.url).pathname;

// ---------------------------------------------------------------------------------------------
// Children: our service, and the two bare proxies.

interface OursStart {
  kind: DatabaseKind;
  /** The service's log level (the default, info, logs two lines per request). */
  logLevel: string;
  port: number;
  issuer: string;
  apiUrl: string;
}

/** Our service on a fresh database of `kind`, as deployed: background loops on, logs to /dev/null. */
function serveOurs(): void {
  let running:
    | {
        close(): Promise<void>;
        tokenOf(id: string): Promise<string>;
        clone(id: string, users: string[]): Promise<string[]>;
      }
    | undefined;
  serveParent({
    async start(payload) {
      const o = payload as OursStart;
      const database = await createTestDatabase(o.kind);
      const svc = await startTestService({
        database,
        port: o.port,
        ...catalogFor({ issuer: o.issuer, apiUrl: o.apiUrl }),
        serviceOptions: { logger: discardingLogger(o.logLevel) },
      });
      running = {
        async close() {
          await svc.close();
          await database.drop();
        },
        async tokenOf(id) {
          return (await svc.service.ctx.tokens.getAccessToken(id)).value;
        },
        clone: (id, users) => cloneConnection(svc.service.ctx, id, users),
      };
      return { url: svc.url };
    },
    /** Copies of one connection for other users (same access token, sealed anew): the ids. */
    async clone(payload) {
      const { connectionId, users } = payload as { connectionId: string; users: string[] };
      return running!.clone(connectionId, users);
    },
    /** The connection's current access token, for the bare proxies' fixed header. */
    async token(payload) {
      return running!.tokenOf((payload as { connectionId: string }).connectionId);
    },
    async close() {
      await running?.close();
    },
  });
}

/**
 * Gives each of `users` a connection of their own, copied from `connectionId`: the same access
 * token (valid for the demo API's hour), sealed anew for the new row; no refresh token and
 * nothing due, so nothing refreshes during the run. Only for spreading load over many rows.
 */
async function cloneConnection(ctx: AppContext, connectionId: string, users: string[]): Promise<string[]> {
  const row = await ctx.connections.findById(connectionId);
  if (row === undefined) throw new Error(`no connection ${connectionId}`);
  const access = ctx.sealer.open(row.access_token_sealed!, {
    table: 'connections',
    rowId: row.id,
    field: 'access_token_sealed',
  });
  const ids: string[] = [];
  for (let at = 0; at < users.length; at += 500) {
    const rows = users.slice(at, at + 500).map((user) => {
      const id = randomUUID();
      ids.push(id);
      return {
        ...row,
        id,
        user_id: user,
        access_token_sealed: ctx.sealer.seal(access, {
          table: 'connections',
          rowId: id,
          field: 'access_token_sealed',
        }),
        refresh_token_sealed: null,
        id_token_sealed: null,
        next_refresh_at: null,
      };
    });
    await ctx.store.db.insertInto('connections').values(rows).execute();
  }
  return ids;
}

interface BareStart {
  upstream: string;
  token: string;
}

/**
 * `GET /proxy/<path>` → `GET <upstream>/<path>` with a fixed bearer header; nothing else.
 * `fastify+outbound` is a diagnostic: bare Fastify, but with our transport (the SSRF-guarded
 * outbound agent, as the proxy route uses it), to tell transport cost from the rest.
 */
function serveBare(framework: 'node:http' | 'fastify' | 'fastify+outbound'): void {
  let close: (() => Promise<void>) | undefined;
  serveParent({
    async start(payload) {
      const o = payload as BareStart;
      const upstream = new Pool(o.upstream);
      const headers = { authorization: `Bearer ${o.token}` };
      const forward = (url: string | undefined, method: string) =>
        upstream.request({
          path: (url ?? '/').replace(/^\/proxy/, '') || '/',
          method: method as Dispatcher.HttpMethod,
          headers,
        });
      // What a pass-through keeps of the answer: its type and, the body passing undecoded, its length.
      const passed = (h: Dispatcher.ResponseData['headers']) => ({
        'content-type': String(h['content-type'] ?? 'application/octet-stream'),
        ...(h['content-length'] === undefined ? {} : { 'content-length': String(h['content-length']) }),
        'cache-control': 'no-store',
      });
      if (framework === 'node:http') {
        const server = createServer((req, res) => {
          forward(req.url, req.method ?? 'GET').then(
            (up) => {
              res.writeHead(up.statusCode, passed(up.headers));
              pipeline(up.body, res, () => {});
            },
            () => res.writeHead(502).end(),
          );
        });
        server.keepAliveTimeout = 120_000;
        await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
        close = async () => {
          server.closeAllConnections();
          await new Promise((done) => server.close(done));
          await upstream.close();
        };
        return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
      }
      const app = Fastify({ logger: false });
      if (framework === 'fastify+outbound') {
        const outbound = createOutbound({ allow: ['127.0.0.0/8'], timeoutMs: 10_000 });
        const origin = new URL(new URL(o.upstream).origin);
        app.get('/proxy/*', async (request, reply) => {
          const up = await outbound.request(
            { origin, path: (request.raw.url ?? '/').replace(/^\/proxy/, '') || '/' },
            { method: 'GET', headers: { ...headers } },
          );
          reply.code(up.statusCode).headers(passed(up.headers));
          return reply.send(up.body);
        });
      } else
        app.get('/proxy/*', async (request, reply) => {
          const up = await forward(request.raw.url, 'GET');
          reply.code(up.statusCode).headers(passed(up.headers));
          return reply.send(up.body);
        });
      const url = await app.listen({ port: 0, host: '127.0.0.1' });
      close = async () => {
        await app.close();
        await upstream.close();
      };
      return { url };
    },
    async close() {
      await close?.();
    },
  });
}

// ---------------------------------------------------------------------------------------------
// The load generator.

interface Target {
  name: string;
  /** The server's process, asked for its CPU time around each round. */
  child: ChildHandle;
  origin: string;
  /** What each request asks for, taken in turn (ours: one per connection and user). */
  requests: Array<{ path: string; headers: Record<string, string> }>;
  pool: Pool;
}

interface RoundResult {
  /** CPU time the server process spent during the round (µs, user + system). */
  serverCpuUs: number;
  ok: number;
  errors: number;
  elapsedMs: number;
  latencies: Float64Array;
}

/** `concurrency` loops, each one request in flight at a time, for `ms`. */
async function runRound(target: Target, concurrency: number, ms: number): Promise<RoundResult> {
  const cpuBefore = await target.child.call<number>('cpu');
  const latencies: number[] = [];
  let errors = 0;
  let next = 0;
  const started = performance.now();
  const deadline = started + ms;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
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
  return {
    serverCpuUs: (await target.child.call<number>('cpu')) - cpuBefore,
    ok: latencies.length,
    errors,
    elapsedMs,
    latencies: Float64Array.from(latencies),
  };
}

const rps = (r: RoundResult) => r.ok / (r.elapsedMs / 1000);
/** Server CPU per request (µs): unlike req/s, hardly moved by what else the machine runs. */
const cpuPerRequest = (r: RoundResult) => r.serverCpuUs / Math.max(1, r.ok + r.errors);

function summarize(rounds: RoundResult[]): {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  cpuUs: number;
} {
  const all = new Float64Array(rounds.reduce((n, r) => n + r.latencies.length, 0));
  let at = 0;
  for (const r of rounds) {
    all.set(r.latencies, at);
    at += r.latencies.length;
  }
  all.sort();
  return {
    rps: median(rounds.map(rps)),
    p50: percentile(all, 50),
    p99: percentile(all, 99),
    errors: rounds.reduce((n, r) => n + r.errors, 0),
    cpuUs: median(rounds.map(cpuPerRequest)),
  };
}

async function main(): Promise<void> {
  const seconds = numberOption('seconds', 10);
  const cycles = numberOption('cycles', 3);
  const concurrency = numberOption('concurrency', 64);
  const warmupSeconds = numberOption('warmup-seconds', 2);
  const logLevel = option('log-level', 'info');
  const spread = numberOption('connections', 1);
  const serverFlags = option('server-flags', serverNodeFlags.join(' '))
    .split(' ')
    .filter((f) => f !== '');
  out(`# Proxy benchmark\n\n${machineLine()}\n`);
  out(
    `${concurrency} requests in flight (undici Pool, ${concurrency} connections), ${seconds} s per round, ` +
      `${cycles} cycles over the targets in rotating order, after a ${warmupSeconds} s warm-up each. ` +
      (spread === 1
        ? 'Ours: one connection, so its row is read from the database once a second (the row cache). '
        : `Ours: ${spread} connections of ${spread} users, requests spread over them in turn, so most ` +
          'rows are read from the database (the row cache keeps a row 1 s). ') +
      'req/s and server CPU per request are medians over rounds, p50/p99 over all requests; ratios are ' +
      `paired per cycle (median, min–max over cycles). Target: req/s ours/bare ≥ ${PROXY_TARGET_RATIO}×. ` +
      `Our service logs at ${logLevel} to /dev/null (asynchronously, as pino writes to stdout by default). Every server runs ` +
      `with \`${serverFlags.join(' ') || '(no flags)'}\`${serverFlags.join(' ') === serverNodeFlags.join(' ') ? ', as `npm start` runs the service' : ''}.\n`,
  );

  const kinds: DatabaseKind[] = ['sqlite', 'postgres'];
  const ports = await Promise.all(kinds.map(() => freePort()));
  const peers = await startPeersProcess({
    redirectUris: ports.map((p) => `http://127.0.0.1:${p}/oauth/callback`),
  });
  const children: ChildHandle[] = [];
  const pools: Pool[] = [];
  try {
    const jwt = await mintToken(testJwtSecret, { sub: 'bench-user' }, { expiresIn: '2h' });
    // --connections N: N users with a connection each, requests spread over them in turn.
    const spreadUsers = Array.from({ length: spread - 1 }, (_, n) => `bench-user-${n + 2}`);
    const spreadJwts = await Promise.all(
      spreadUsers.map((sub) => mintToken(testJwtSecret, { sub }, { expiresIn: '2h' })),
    );
    const targets: Target[] = [];
    let bareToken = '';
    for (const [i, kind] of kinds.entries()) {
      const child = forkChild(thisFile, ['--role', 'ours'], [...process.execArgv, ...serverFlags]);
      children.push(child);
      const start: OursStart = {
        kind,
        logLevel,
        port: ports[i]!,
        issuer: peers.issuer,
        apiUrl: peers.apiUrl,
      };
      const { url } = await child.call<{ url: string }>('start', start);
      const connectionId = await connectThroughFlow(url, jwt, `bench-${kind}`);
      if (bareToken === '') bareToken = await child.call<string>('token', { connectionId });
      const clones = await child.call<string[]>('clone', { connectionId, users: spreadUsers });
      const requests = [
        {
          path: `/api/v1/connections/${connectionId}/proxy/items`,
          headers: { authorization: `Bearer ${jwt}` },
        },
        ...clones.map((id, n) => ({
          path: `/api/v1/connections/${id}/proxy/items`,
          headers: { authorization: `Bearer ${spreadJwts[n]!}` },
        })),
      ];
      targets.push({
        name: `ours (${kind === 'sqlite' ? 'SQLite' : 'PostgreSQL'})`,
        child,
        origin: url,
        requests,
        pool: new Pool(url, { connections: concurrency }),
      });
    }
    const bares = [
      { role: 'bare-http', name: 'bare node:http' },
      { role: 'bare-fastify', name: 'bare Fastify' },
      ...(flag('no-diagnostic')
        ? []
        : [{ role: 'bare-fastify-outbound', name: 'diag: bare Fastify + our outbound agent' }]),
    ];
    for (const bare of bares) {
      const child = forkChild(thisFile, ['--role', bare.role], [...process.execArgv, ...serverFlags]);
      children.push(child);
      const { url } = await child.call<{ url: string }>('start', {
        upstream: peers.apiUrl,
        token: bareToken,
      });
      targets.push({
        name: bare.name,
        child,
        origin: url,
        requests: [{ path: '/proxy/items', headers: {} }],
        pool: new Pool(url, { connections: concurrency }),
      });
    }
    targets.sort((a, b) => a.name.localeCompare(b.name));
    pools.push(...targets.map((t) => t.pool));

    // Same answer everywhere, or the comparison means nothing.
    const bodies = await Promise.all(
      targets.map(async (t) => {
        const r = await t.pool.request({ ...t.requests.at(-1)!, method: 'GET' });
        const text = await r.body.text();
        if (r.statusCode !== 200) throw new Error(`${t.name}: HTTP ${r.statusCode} ${text.slice(0, 200)}`);
        return text;
      }),
    );
    if (new Set(bodies).size !== 1) throw new Error('the targets answer differently');

    for (const t of targets) await runRound(t, concurrency, warmupSeconds * 1000);
    const rounds = new Map(targets.map((t) => [t.name, [] as RoundResult[]]));
    for (let cycle = 0; cycle < cycles; cycle++) {
      const order = targets.map((_, i) => targets[(i + cycle) % targets.length]!);
      for (const t of order) {
        rounds.get(t.name)!.push(await runRound(t, concurrency, seconds * 1000));
        await sleep(200);
      }
    }
    const api = await peers.counters();
    if (api.apiUnauthorized > 0) out(`⚠ the demo API answered 401 ${api.apiUnauthorized} times\n`);
    out(`\n${resultTables(targets, rounds)}\n`);

    if (flag('heap-profile')) {
      const wanted = option('profile-target', 'ours (SQLite)');
      const target = targets.find((t) => t.name === wanted)!;
      await target.child.call('heap-start');
      const r = await runRound(target, concurrency, seconds * 1000);
      await target.child.call('heap-stop', { file: '/tmp/heap.heapprofile' });
      out(`heap profile of ${wanted}: ${r.ok} requests, /tmp/heap.heapprofile\n`);
    }
    if (flag('profile')) {
      const wanted = option('profile-target', 'ours (SQLite)');
      const target = targets.find((t) => t.name === wanted);
      if (target === undefined) throw new Error(`--profile-target: no target named ${wanted}`);
      const dir = mkdtempSync(join(tmpdir(), 'nunq-prof-'));
      try {
        await target.child.call('profile-start');
        const r = await runRound(target, concurrency, seconds * 1000);
        const file = await target.child.call<string>('profile-stop', { file: join(dir, 'ours.cpuprofile') });
        out(
          `\n## CPU profile of ${target.name} over one ${seconds} s round ` +
            `(${Math.round(rps(r))} req/s, ${Math.round(cpuPerRequest(r))} µs CPU per request while profiled)\n\n`,
        );
        out(`${summarizeCpuProfile(file, Number(option('top', '30')))}\n`);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  } finally {
    for (const pool of pools) await pool.close();
    for (const child of children) await child.close();
    await peers.close();
  }
}

/** The throughput/latency table and the per-cycle ratios of ours against each bare proxy. */
function resultTables(targets: Target[], rounds: Map<string, RoundResult[]>): string {
  const paired = (ours: string, bare: string, f: (r: RoundResult) => number) => {
    const rs = rounds.get(ours)!.map((r, i) => f(r) / f(rounds.get(bare)![i]!));
    return `${median(rs).toFixed(2)}× (${Math.min(...rs).toFixed(2)}–${Math.max(...rs).toFixed(2)})`;
  };
  const summaries = new Map(targets.map((t) => [t.name, summarize(rounds.get(t.name)!)]));
  const main = markdownTable(
    ['target', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'server CPU µs/request'],
    targets.map((t) => {
      const s = summaries.get(t.name)!;
      return [t.name, Math.round(s.rps), s.p50.toFixed(1), s.p99.toFixed(1), s.errors, Math.round(s.cpuUs)];
    }),
    'lrrrrr',
  );
  const compared = targets.filter((t) => !t.name.startsWith('bare'));
  const ratioRows = compared.flatMap((t) =>
    (t.name.startsWith('diag') ? ['bare Fastify'] : ['bare node:http', 'bare Fastify']).map((bare) => {
      const s = summaries.get(t.name)!;
      const b = summaries.get(bare)!;
      const rpsRatio = rounds.get(t.name)!.map((r, i) => rps(r) / rps(rounds.get(bare)![i]!));
      return [
        `${t.name} / ${bare}`,
        `${paired(t.name, bare, rps)}${t.name.startsWith('ours') && median(rpsRatio) < PROXY_TARGET_RATIO ? ' ⚠' : ''}`,
        `${(s.p50 / b.p50).toFixed(2)}×`,
        `${(s.p99 / b.p99).toFixed(2)}×`,
        paired(t.name, bare, cpuPerRequest),
      ];
    }),
  );
  const ratios = markdownTable(
    ['ratio', 'req/s (target ≥ 0.90×)', 'p50', 'p99', 'server CPU per request'],
    ratioRows,
    'lrrrr',
  );
  return `${main}\n\n${ratios}`;
}

if (isMainModule(import.meta.url)) {
  const role = option('role', '');
  if (role === 'ours') serveOurs();
  else if (role === 'bare-http') serveBare('node:http');
  else if (role === 'bare-fastify') serveBare('fastify');
  else if (role === 'bare-fastify-outbound') serveBare('fastify+outbound');
  else await main();
}
