/**
 * MCP gateway benchmark, as deployed: `tools/call` of a cheap `echo` tool through the gateway's
 * `/mcp/:integrationId` and its aggregating `/mcp` (the tool named `bench__echo`), against the
 * same calls made directly to the MCP server with a valid token, in the same run.
 *
 * What runs, each in its own process (the machinery of bench/proxy.ts):
 * - ours: `node bin/nunq-connect.js serve --config FILE`, started by its bin as a user starts it,
 *   logging at its default level into a pipe that a separate reader process (`wc -lc`) drains;
 *   one on SQLite and one on PostgreSQL, each on a fresh database. The config names the upstream
 *   in `mcpServers` (the catalog is synced from it at start) and the bench user's connection to
 *   it is seeded in the database with the service's own sealer: the upstream's static token,
 *   valid for a year, no refresh token, so no refresh happens.
 * - the upstream: a minimal MCP server built with @modelcontextprotocol/sdk v1 (`McpServer` +
 *   `StreamableHTTPServerTransport`, stateful sessions, one `echo` tool) behind a node:http
 *   constant-time compare of a static bearer token (no JWT verification: a costly upstream would
 *   hide our cost). It serves JSON answers at `/mcp` (`enableJsonResponse: true`) and SSE answers
 *   at `/mcp-sse`, two MCP servers of the config (`bench` and `bench-sse`).
 * - the bare hop (`--paths` has `bare`): a pass-through that does as little as an HTTP hop can
 *   (node:http in, an undici Pool out, the bearer swapped for the upstream's token, bodies read whole;
 *   bench/gateway-mcp.ts), its own process. The target compares the gateway with direct calls, so
 *   one more hop is in its ratio; the bare hop measures what that hop alone costs here, and the
 *   gateway is also reported against it.
 * - the load generator: this process. `--concurrency` MCP sessions per target, each initialized
 *   once (`initialize`, then `notifications/initialized`), then calling `tools/call` in a loop,
 *   one call in flight per session, over an undici Pool of as many connections. The calls are
 *   raw undici requests carrying the session's `Mcp-Session-Id` and `Mcp-Protocol-Version`, not
 *   the SDK's `Client`: the SDK client sends through WHATWG fetch and validates every message
 *   with zod; measured with `--client sdk` on the direct path, it cost the load generator
 *   800–950 µs of CPU per call against 170–180 µs for the raw requests, more than the upstream
 *   itself, and on two shared cores the bench would then measure the client, not the targets
 *   (JSON answers: 339 calls/s with it against 1,115 with raw requests in that run). Every
 *   answer is still checked (the JSON-RPC id and the echoed text, from a JSON body or from the
 *   SSE stream), and before the rounds each target is checked once with the SDK's own `Client`
 *   (`listTools`, `callTool`). The upstream and this MCP client are in bench/gateway-mcp.ts.
 *
 * Rounds alternate over the targets in rotating order, so each gateway/direct ratio is paired
 * within a cycle. Each target gets a throughput round (`--concurrency` sessions, `--seconds`)
 * and a latency round (one session, one call in flight, `--latency-seconds`): at 32 calls in
 * flight the latency is mostly queueing (concurrency / throughput), so the added p50/p99 are
 * taken from the latency rounds, where they are what the gateway adds to one call. CPU per call
 * of every process comes from `/proc/<pid>/stat` deltas around each round (the gateway's also
 * for the latency rounds, where it is what one call costs without company), and "cores busy" is
 * what all the bench's processes spent per second of a throughput round: on two cores, a round
 * near 2 is bound by CPU, and then any hop's own cost comes off the calls/s. On a machine whose
 * load changes within a cycle (ten targets take about two minutes), `--pairing adjacent` runs
 * each gateway target's rounds right next to direct rounds of its own instead (direct first on
 * even cycles, last on odd ones), and pairs each ratio within those two rounds.
 *
 * Run: `node --import tsx bench/gateway.ts [--seconds 8] [--cycles 3] [--concurrency 32]
 *       [--latency-seconds 3] [--warmup-seconds 2] [--answers json|sse|both]
 *       [--paths direct,bare,single,aggregate] [--only sqlite|postgres] [--client raw|sdk] [--no-build]
 *       [--pairing rotating|adjacent] [--verbose] [--profile [--profile-path single|aggregate] [--top 30]]`
 * `--verbose` prints every round to stderr as it ends.
 * `--client sdk` makes the calls with one SDK `Client` per session instead (to see what it costs).
 * `--profile [--profile-path single|aggregate] [--top 30]` then runs ours (SQLite, the first
 * `--answers` mode) once more under `node --cpu-prof` for one round and prints its hot spots.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import { generateKey } from '../src/crypto/index.js';
import { mintToken } from '../src/identity/jwt.js';
import type { DatabaseKind } from '../src/store/database.js';
import { createTestDatabase, type TestDatabase } from '../test/support/databases.js';
import { freePort } from '../test/support/service.js';
import {
  type Answers,
  callEcho,
  checkWithSdkClient,
  openSdkSession,
  openSession,
  type Path,
  servers,
  startBareHop,
  startUpstream,
  type Target,
  type UpstreamCounters,
} from './gateway-mcp.js';
import { processCpuUs, treeCpuUs } from './proc.js';
import { build, type Ours, seedConnections, startOurs, trimProfile } from './proxy.js';
import {
  benchRateLimits,
  type ChildHandle,
  flag,
  isMainModule,
  machineLine,
  markdownTable,
  median,
  numberOption,
  option,
  out,
  percentile,
  sleep,
  summarizeCpuProfile,
} from './support.js';

/** The acceptance targets: gateway throughput at least this fraction of direct, p50 added under this. */
export const GATEWAY_TARGET_THROUGHPUT = 0.8;
export const GATEWAY_TARGET_ADDED_P50_MS = 1;

const jwtSecret = 'bench-jwt-secret-0123456789abcdef-0123456789';
const benchUser = 'bench-user-1';
// ---------------------------------------------------------------------------------------------
// Rounds.

interface RoundResult {
  ok: number;
  errors: number;
  elapsedMs: number;
  latencies: Float64Array;
  /** CPU µs during the round: the gateway, its log reader, the upstream, this load generator. */
  cpu: { server: number; reader: number; upstream: number; loadgen: number };
}

/** `sessions` loops, each its own MCP session with one call in flight, for `ms`. */
async function runRound(t: Target, upstreamPid: number, sessions: number, ms: number): Promise<RoundResult> {
  const sample = () => ({
    server: treeCpuUs(t.serverPids),
    reader: t.readerPid === undefined ? 0 : processCpuUs(t.readerPid),
    upstream: processCpuUs(upstreamPid),
    loadgen: processCpuUs(process.pid),
  });
  const before = sample();
  const latencies: number[] = [];
  let errors = 0;
  const started = performance.now();
  const deadline = started + ms;
  await Promise.all(
    t.sessions.slice(0, sessions).map(async (session) => {
      while (performance.now() < deadline) {
        const t0 = performance.now();
        try {
          if (await callEcho(t, session)) latencies.push(performance.now() - t0);
          else errors++;
        } catch {
          errors++;
        }
      }
    }),
  );
  const elapsedMs = performance.now() - started;
  const after = sample();
  t.sent += latencies.length + errors;
  return {
    ok: latencies.length,
    errors,
    elapsedMs,
    latencies: Float64Array.from(latencies).sort(),
    cpu: {
      server: after.server - before.server,
      reader: after.reader - before.reader,
      upstream: after.upstream - before.upstream,
      loadgen: after.loadgen - before.loadgen,
    },
  };
}

const rps = (r: RoundResult) => r.ok / (r.elapsedMs / 1000);
const perCall = (r: RoundResult, part: keyof RoundResult['cpu']) =>
  r.cpu[part] / Math.max(1, r.ok + r.errors);

// ---------------------------------------------------------------------------------------------
// Ours.

/** The service's config: the upstream's two MCP servers, JWT users, outbound limited to loopback. */
function oursConfig(port: number, databaseUrl: string, upstream: string, key: string): unknown {
  return {
    server: { host: '127.0.0.1', port, publicUrl: `http://127.0.0.1:${port}` },
    database: { url: databaseUrl },
    encryption: { activeKey: 'k1', keys: [{ id: 'k1', key }] },
    auth: { mode: 'jwt', jwt: { secret: jwtSecret } },
    rateLimits: benchRateLimits,
    outbound: { allow: ['127.0.0.1/32'] },
    mcpServers: (Object.values(servers) as Array<(typeof servers)[Answers]>).map((s) => ({
      id: s.integrationId,
      name: `Bench (${s.integrationId})`,
      url: `${upstream}${s.path}`,
    })),
  };
}

async function main(): Promise<void> {
  const seconds = numberOption('seconds', 8);
  const cycles = numberOption('cycles', 3);
  const concurrency = numberOption('concurrency', 32);
  const latencySeconds = numberOption('latency-seconds', 3);
  const warmupSeconds = numberOption('warmup-seconds', 2);
  const only = option('only', '');
  const answersOption = option('answers', 'both');
  const answerModes: Answers[] = answersOption === 'both' ? ['json', 'sse'] : [answersOption as Answers];
  if (!answerModes.every((a) => a in servers)) throw new Error('--answers must be json, sse or both');
  const paths = option('paths', 'direct,bare,single,aggregate').split(',') as Path[];
  if (!paths.every((p) => ['direct', 'bare', 'single', 'aggregate'].includes(p))) {
    throw new Error('--paths must list direct, bare, single and/or aggregate');
  }
  const sdkClient = option('client', 'raw') === 'sdk';
  const pairing = option('pairing', 'rotating');
  if (pairing !== 'rotating' && pairing !== 'adjacent')
    throw new Error('--pairing must be rotating or adjacent');
  const adjacent = pairing === 'adjacent';
  const kinds = (['sqlite', 'postgres'] as DatabaseKind[]).filter((k) => only === '' || k === only);
  const gatewayPaths = paths.filter((p) => p === 'single' || p === 'aggregate');
  if (!flag('no-build') && gatewayPaths.length > 0) build();

  out(
    `# MCP gateway benchmark (as deployed)\n\n${machineLine()}, ${new Date().toISOString().slice(0, 10)}\n\n`,
  );
  out(
    `tools/call of an \`echo\` tool. Throughput rounds: ${concurrency} MCP sessions per target, one call in flight ` +
      `each (${sdkClient ? "the SDK's Client and its Streamable HTTP transport, one per session" : `raw undici requests over a Pool of ${concurrency} connections`}), ${seconds} s; latency rounds: one session, one call in ` +
      `flight, ${latencySeconds} s; ${cycles} cycles ${adjacent ? 'over the gateway targets in rotating order, each next to direct rounds of its own (direct first on even cycles)' : 'over the targets in rotating order'}, after a ${warmupSeconds} s ` +
      'warm-up each. Ours is `node bin/nunq-connect.js serve --config FILE` (no node flags of ours; the bin sets ' +
      'its own), logging at its default level into a pipe drained by `wc -lc`. calls/s and CPU per call are ' +
      'medians over rounds, p50/p99 over all calls of a kind of round; ratios and added latencies are paired ' +
      `${adjacent ? 'with the adjacent direct rounds' : 'per cycle'} (median, min–max). Targets: calls/s gateway/direct ≥ ${GATEWAY_TARGET_THROUGHPUT}×, ` +
      `added p50 < ${GATEWAY_TARGET_ADDED_P50_MS} ms (one call in flight).\n`,
  );

  const tmp = mkdtempSync(join(tmpdir(), 'nunq-bench-gateway-'));
  const children: ChildHandle[] = [];
  const targets: Target[] = [];
  const ours: Array<{ kind: DatabaseKind; handle: Ours; database: TestDatabase }> = [];
  try {
    const upstreamToken = `static-${randomUUID()}`;
    const { url: upstream, child: upstreamChild } = await startUpstream(upstreamToken);
    children.push(upstreamChild);
    const jwt = await mintToken(jwtSecret, { sub: benchUser }, { expiresIn: '4h' });
    const target = (
      o: Pick<
        Target,
        'name' | 'path' | 'answers' | 'serverPids' | 'url' | 'endpoint' | 'authorization' | 'tool'
      > &
        Partial<Target>,
    ): Target => ({
      ...o,
      pool: new Pool(o.url, { connections: concurrency }),
      sessions: [],
      sent: 0,
      nextId: 0,
    });

    if (paths.includes('direct')) {
      for (const answers of answerModes) {
        targets.push(
          target({
            name: `direct (${answers.toUpperCase()})`,
            path: 'direct',
            answers,
            serverPids: [],
            url: upstream,
            endpoint: servers[answers].path,
            authorization: `Bearer ${upstreamToken}`,
            tool: 'echo',
          }),
        );
      }
    }
    if (paths.includes('bare')) {
      const { url, child } = await startBareHop(upstream, upstreamToken);
      children.push(child);
      for (const answers of answerModes) {
        targets.push(
          target({
            name: `bare hop (${answers.toUpperCase()})`,
            path: 'bare',
            answers,
            serverPids: [child.pid],
            url,
            endpoint: servers[answers].path,
            authorization: 'Bearer not-the-upstream-token',
            tool: 'echo',
          }),
        );
      }
    }
    if (gatewayPaths.length > 0) {
      const key = generateKey();
      for (const kind of kinds) {
        const database = await createTestDatabase(kind);
        const port = await freePort();
        const file = join(tmp, `nunq-${kind}.yaml`);
        writeFileSync(file, JSON.stringify(oursConfig(port, database.url, upstream, key)), { mode: 0o600 });
        const handle = await startOurs(file, port);
        ours.push({ kind, handle, database });
        for (const answers of answerModes) {
          await seedConnections(database.url, key, upstreamToken, [benchUser], {
            integrationId: servers[answers].integrationId,
            validForMs: 365 * 24 * 3600_000,
          });
        }
        const db = kind === 'sqlite' ? 'SQLite' : 'PostgreSQL';
        for (const answers of answerModes) {
          const integrationId = servers[answers].integrationId;
          for (const path of gatewayPaths) {
            targets.push(
              target({
                name: `${path === 'single' ? `/mcp/${integrationId}` : '/mcp'} (${db}, ${answers.toUpperCase()})`,
                path,
                answers,
                kind,
                serverPids: handle.pids,
                readerPid: handle.readerPid,
                url: handle.url,
                endpoint: path === 'single' ? `/mcp/${integrationId}` : '/mcp',
                authorization: `Bearer ${jwt}`,
                tool: path === 'single' ? 'echo' : `${integrationId}__echo`,
              }),
            );
          }
        }
      }
    }

    // Every target speaks MCP to the SDK's client and echoes; then its sessions are opened.
    for (const t of targets) {
      await checkWithSdkClient(t);
      for (let i = 0; i < concurrency; i++) {
        t.sessions.push(await (sdkClient ? openSdkSession(t) : openSession(t)));
      }
      if (!(await callEcho(t, t.sessions[0]!)))
        throw new Error(`${t.name}: the first tools/call did not echo`);
      t.sent++;
    }

    for (const t of targets) await runRound(t, upstreamChild.pid, concurrency, warmupSeconds * 1000);
    const rounds: Rounds = new Map(
      targets.map((t) => [t.name, { load: [] as RoundResult[], one: [] as RoundResult[] }]),
    );
    const verbose = flag('verbose');
    const measure = async (t: Target, into: { load: RoundResult[]; one: RoundResult[] }) => {
      const load = await runRound(t, upstreamChild.pid, concurrency, seconds * 1000);
      into.load.push(load);
      await sleep(200);
      const one = await runRound(t, upstreamChild.pid, 1, latencySeconds * 1000);
      into.one.push(one);
      await sleep(200);
      if (verbose) {
        process.stderr.write(
          `${new Date().toISOString().slice(11, 19)} ${t.name}: ${Math.round(rps(load))} calls/s, ` +
            `gateway ${Math.round(perCall(load, 'server'))} / upstream ${Math.round(perCall(load, 'upstream'))} / ` +
            `load generator ${Math.round(perCall(load, 'loadgen'))} µs CPU per call; ` +
            `1 in flight p50 ${percentile(one.latencies, 50).toFixed(2)} ms\n`,
        );
      }
    };
    const directFor = (t: Target) => targets.find((d) => d.path === 'direct' && d.answers === t.answers);
    for (let cycle = 0; cycle < cycles; cycle++) {
      if (!adjacent) {
        const order = targets.map((_, i) => targets[(i + cycle) % targets.length]!);
        for (const t of order) await measure(t, rounds.get(t.name)!);
        continue;
      }
      // Each gateway round next to a direct round of its own, direct first on even cycles.
      const gateways = targets.filter((t) => t.path !== 'direct');
      for (const t of gateways.map((_, i) => gateways[(i + cycle) % gateways.length]!)) {
        const r = rounds.get(t.name)!;
        const direct = directFor(t);
        if (direct === undefined) {
          await measure(t, r);
          continue;
        }
        r.partner ??= { load: [], one: [] };
        const partner = { load: [] as RoundResult[], one: [] as RoundResult[] };
        const pair = cycle % 2 === 0 ? [direct, t] : [t, direct];
        for (const x of pair) await measure(x, x === t ? r : partner);
        r.partner.load.push(...partner.load);
        r.partner.one.push(...partner.one);
        rounds.get(direct.name)!.load.push(...partner.load);
        rounds.get(direct.name)!.one.push(...partner.one);
      }
    }
    out(`\n${resultTables(targets, rounds, concurrency)}\n\n`);

    const counters = await upstreamChild.call<UpstreamCounters>('counters');
    out(
      `Upstream: ${counters.requests} requests, ${counters.sessions} MCP sessions, ${counters.unauthorized} ` +
        `refused for a missing or wrong bearer (the service's discovery probes, if any), ${counters.foreignCredentials} ` +
        'carrying a credential other than its token.\n',
    );
    for (const o of ours.splice(0)) {
      const sent = targets.filter((t) => t.kind === o.kind).reduce((n, t) => n + t.sent, 0);
      const read = await o.handle.stop();
      await o.database.drop();
      out(
        `ours (${o.kind}): the reader read ${read.lines} log lines (${(read.bytes / Math.max(1, read.lines)).toFixed(0)} ` +
          `bytes each) for ${sent} HTTP requests of the load generator (plus the SDK client's checks); ` +
          `serve exited with ${read.code}.\n`,
      );
    }
    if (flag('profile')) {
      await profileOurs(tmp, upstream, upstreamChild.pid, upstreamToken, jwt, {
        concurrency,
        seconds,
        path: (option('profile-path', 'single') as Path) === 'aggregate' ? 'aggregate' : 'single',
        answers: answerModes[0]!,
        top: numberOption('top', 30),
      });
    }
  } finally {
    for (const t of targets) {
      for (const s of t.sessions) await s.client?.close().catch(() => {});
      await t.pool.close().catch(() => {});
    }
    for (const o of ours) {
      await o.handle.stop().catch(() => {});
      await o.database.drop().catch(() => {});
    }
    for (const child of children) await child.close();
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** One round on ours (SQLite, one gateway path) with every node process under `--cpu-prof`. */
async function profileOurs(
  tmp: string,
  upstream: string,
  upstreamPid: number,
  token: string,
  jwt: string,
  o: { concurrency: number; seconds: number; path: Exclude<Path, 'direct'>; answers: Answers; top: number },
): Promise<void> {
  const dir = join(tmp, 'profiles');
  const database = await createTestDatabase('sqlite');
  const key = generateKey();
  const port = await freePort();
  const file = join(tmp, 'nunq-profile.yaml');
  writeFileSync(file, JSON.stringify(oursConfig(port, database.url, upstream, key)), { mode: 0o600 });
  const handle = await startOurs(file, port, ['--cpu-prof', `--cpu-prof-dir=${dir}`]);
  const { integrationId } = servers[o.answers];
  const t: Target = {
    name: `${o.path === 'single' ? `/mcp/${integrationId}` : '/mcp'} (SQLite, ${o.answers.toUpperCase()}, profiled)`,
    path: o.path,
    answers: o.answers,
    serverPids: handle.pids,
    pool: new Pool(handle.url, { connections: o.concurrency }),
    url: handle.url,
    endpoint: o.path === 'single' ? `/mcp/${integrationId}` : '/mcp',
    authorization: `Bearer ${jwt}`,
    tool: o.path === 'single' ? 'echo' : `${integrationId}__echo`,
    sessions: [],
    sent: 0,
    nextId: 0,
  };
  try {
    await seedConnections(database.url, key, token, [benchUser], {
      integrationId,
      validForMs: 365 * 24 * 3600_000,
    });
    for (let i = 0; i < o.concurrency; i++) t.sessions.push(await openSession(t));
    await runRound(t, upstreamPid, o.concurrency, 2000);
    const r = await runRound(t, upstreamPid, o.concurrency, o.seconds * 1000);
    await handle.stop();
    // The serving process is the busiest: its profile is the largest file.
    const profiles = readdirSync(dir).map((f) => join(dir, f));
    const largest = trimProfile(
      profiles.sort((a, b) => statSync(b).size - statSync(a).size)[0]!,
      o.seconds * 1e6,
    );
    out(
      `\n## CPU profile of ours (${t.name}) over its last ${o.seconds} s round (start-up and shutdown cut off) ` +
        `(${Math.round(rps(r))} calls/s, ${Math.round(perCall(r, 'server'))} µs CPU per call while profiled)\n\n` +
        `${summarizeCpuProfile(largest, o.top)}\n`,
    );
  } finally {
    await t.pool.close();
    await handle.stop().catch(() => {});
    await database.drop();
  }
}

/**
 * The CPU cores the processes of a round (ours, its log reader, the upstream, this load generator)
 * kept busy: on two cores, a round near 2 was bound by CPU, where every hop's own cost comes off
 * the throughput; below, the upstream's single thread set the pace.
 */
function coresBusy(r: RoundResult): number {
  return (r.cpu.server + r.cpu.reader + r.cpu.upstream + r.cpu.loadgen) / (r.elapsedMs * 1000);
}

/** Per target its rounds; with `--pairing adjacent`, a gateway target's own direct rounds as `partner`. */
type Rounds = Map<
  string,
  { load: RoundResult[]; one: RoundResult[]; partner?: { load: RoundResult[]; one: RoundResult[] } }
>;

/** The per-target table and, per gateway target, its paired ratios to the direct calls. */
function resultTables(targets: Target[], rounds: Rounds, concurrency: number): string {
  const all = (rs: RoundResult[]) => Float64Array.from(rs.flatMap((r) => [...r.latencies])).sort();
  const ms = (v: number) => v.toFixed(2);
  const main = markdownTable(
    [
      'target',
      'calls/s',
      `p50 ms (${concurrency} in flight)`,
      `p99 ms (${concurrency} in flight)`,
      'p50 ms (1 in flight)',
      'p99 ms (1 in flight)',
      'errors',
      'gateway CPU µs/call',
      'gateway CPU µs/call (1 in flight)',
      'log reader µs/call',
      'upstream µs/call',
      'load generator µs/call',
      'cores busy',
    ],
    targets.map((t) => {
      const { load, one } = rounds.get(t.name)!;
      const cpu = (part: keyof RoundResult['cpu']) => Math.round(median(load.map((r) => perCall(r, part))));
      const gateway = t.path !== 'direct';
      return [
        t.name,
        Math.round(median(load.map(rps))),
        ms(percentile(all(load), 50)),
        ms(percentile(all(load), 99)),
        ms(percentile(all(one), 50)),
        ms(percentile(all(one), 99)),
        [...load, ...one].reduce((n, r) => n + r.errors, 0),
        gateway ? cpu('server') : '–',
        gateway ? Math.round(median(one.map((r) => perCall(r, 'server')))) : '–',
        gateway ? cpu('reader') : '–',
        cpu('upstream'),
        cpu('loadgen'),
        median(load.map(coresBusy)).toFixed(2),
      ];
    }),
    'lrrrrrrrrrrrr',
  );
  const range = (values: number[], digits: number, unit: string) =>
    `${median(values).toFixed(digits)}${unit} (${Math.min(...values).toFixed(digits)}–${Math.max(...values).toFixed(digits)})`;
  const ratioRows = targets
    .filter((t) => t.path !== 'direct')
    .map((t) => {
      const direct = targets.find((d) => d.path === 'direct' && d.answers === t.answers);
      const g = rounds.get(t.name)!;
      if (direct === undefined) return [t.name, '(no direct target)', '', '', ''];
      const d = g.partner ?? rounds.get(direct.name)!;
      const throughput = g.load.map((r, i) => rps(r) / rps(d.load[i]!));
      const added = (p: number) =>
        g.one.map((r, i) => percentile(r.latencies, p) - percentile(d.one[i]!.latencies, p));
      const addedLoaded = g.load.map(
        (r, i) => percentile(r.latencies, 50) - percentile(d.load[i]!.latencies, 50),
      );
      return [
        `${t.name} / ${direct.name}`,
        `${range(throughput, 2, '×')}${median(throughput) < GATEWAY_TARGET_THROUGHPUT ? ' ⚠' : ''}`,
        `${range(added(50), 2, ' ms')}${median(added(50)) >= GATEWAY_TARGET_ADDED_P50_MS ? ' ⚠' : ''}`,
        range(added(99), 2, ' ms'),
        range(addedLoaded, 2, ' ms'),
      ];
    });
  const bareRows = targets
    .filter((t) => t.path === 'single' || t.path === 'aggregate')
    .flatMap((t) => {
      const bare = targets.find((b) => b.path === 'bare' && b.answers === t.answers);
      if (bare === undefined) return [];
      const g = rounds.get(t.name)!;
      const b = rounds.get(bare.name)!;
      const throughput = g.load.map((r, i) => rps(r) / rps(b.load[i]!));
      const added = g.one.map((r, i) => percentile(r.latencies, 50) - percentile(b.one[i]!.latencies, 50));
      return [[`${t.name} / ${bare.name}`, range(throughput, 2, '×'), range(added, 2, ' ms')]];
    });
  const ratios = markdownTable(
    [
      'gateway path (or bare hop) / direct',
      `calls/s (target ≥ ${GATEWAY_TARGET_THROUGHPUT.toFixed(2)}×)`,
      `added p50, 1 in flight (target < ${GATEWAY_TARGET_ADDED_P50_MS} ms)`,
      'added p99, 1 in flight',
      `added p50, ${concurrency} in flight`,
    ],
    ratioRows,
    'lrrrr',
  );
  const againstBare =
    bareRows.length === 0
      ? ''
      : `\n\nAgainst the bare hop (what any pass-through costs on this machine; no target):\n\n${markdownTable(
          ['gateway path / bare hop', 'calls/s', 'added p50, 1 in flight'],
          bareRows,
          'lrr',
        )}`;
  return `${main}\n\n${ratios}${againstBare}`;
}

if (isMainModule(import.meta.url)) await main();
