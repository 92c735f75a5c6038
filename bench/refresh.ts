/**
 * Token-lifecycle benchmarks against a real oidc-provider (in a child process) and real databases.
 *
 * 1. Refreshes per expiry: three service instances on one database, one connection made through the
 *    real authorization code flow, short access tokens with refresh token rotation; after each
 *    expiry, `--callers` concurrent proxied calls spread over the instances. Target: exactly one
 *    refresh_token request per expiry, no reuse detection, every call 200. Baseline for the wall
 *    time: the same burst on a fleet with 1-hour tokens (no refresh due).
 * 2. Refresh storm: `--storm` connections due at once, refreshed by the scheduler
 *    (`runDueRefreshes`, repeatedly until nothing is due) on one and then three instances, each
 *    run in a fresh child process. Target: provider calls = connections (no duplicates), no
 *    failures, and a refresh rate ≥ 0.9× refresh grants sent straight to the provider at the
 *    same concurrency (paired slices: `--slice` rows, then `--bare-window` bare grants); peak RSS.
 *
 * Run: `node --import tsx bench/refresh.ts [--only expiry|storm] [--expiries 3] [--callers 500]
 *       [--ttl 3] [--storm 10000] [--cap-seconds 180] [--slice 1000] [--bare-window 500]
 *       [--no-storm-sqlite] [--storm-kinds postgres,sqlite] [--storm-instances 1,3]`
 */
import { randomUUID } from 'node:crypto';
import { runDueRefreshes } from '../src/connections/refresh-scheduler.js';
import type { Logger } from '../src/observability/logger.js';
import { createLogger } from '../src/observability/logger.js';
import type { DatabaseKind, Store } from '../src/store/database.js';
import type { ConnectionRow } from '../src/store/types.js';
import { createTestDatabase, type TestDatabase } from '../test/support/databases.js';
import { freePort, startTestService, type TestService } from '../test/support/service.js';
import { commandCpuUs, processCpuUs } from './proc.js';
import {
  benchClientSecret,
  benchRateLimits,
  catalogFor,
  connectThroughFlow,
  flag,
  forkChild,
  isMainModule,
  machineLine,
  markdownTable,
  mb,
  mean,
  median,
  numberOption,
  option,
  out,
  type Peers,
  RssSampler,
  serveParent,
  sharedEncryption,
  sleep,
  startPeersProcess,
} from './support.js';

const thisFile = new URL(import.meta.url).pathname;

/** A logger that writes nothing but counts lines by message (failures, discarded refreshes). */
function countingLogger(level: string): { logger: Logger; counts: Map<string, number> } {
  const counts = new Map<string, number>();
  const logger = createLogger({
    level,
    destination: {
      write(line: string) {
        if (!line.includes('"level":') || line.includes('"level":30')) return; // info: requests
        const msg = /"msg":"([^"]*)"/.exec(line)?.[1] ?? '?';
        counts.set(msg, (counts.get(msg) ?? 0) + 1);
      },
    },
  });
  return { logger, counts };
}

interface Fleet {
  database: TestDatabase;
  peers: Peers;
  instances: TestService[];
  counts: Map<string, number>;
  close(): Promise<void>;
}

/** Peers in a child process, then `n` service instances on one fresh database sharing one key. */
async function startFleet(
  kind: DatabaseKind,
  n: number,
  peerOptions: { accessTokenTtlSeconds?: number; rotateRefreshToken: boolean },
  logLevel: string,
): Promise<Fleet> {
  const database = await createTestDatabase(kind);
  const ports = await Promise.all(Array.from({ length: n }, () => freePort()));
  const peers = await startPeersProcess({
    redirectUris: ports.map((p) => `http://127.0.0.1:${p}/oauth/callback`),
    ...peerOptions,
  });
  const encryption = sharedEncryption();
  const { logger, counts } = countingLogger(logLevel);
  const instances: TestService[] = [];
  // One after another: each migrates and syncs the catalog on start.
  for (const port of ports) {
    instances.push(
      await startTestService({
        database,
        port,
        encryption,
        ...catalogFor(peers),
        rateLimits: benchRateLimits,
        serviceOptions: { background: false, logger },
      }),
    );
  }
  return {
    database,
    peers,
    instances,
    counts,
    async close() {
      for (const i of instances) await i.close();
      await peers.close();
      await database.drop();
    },
  };
}

async function readRow(store: Store, id: string): Promise<ConnectionRow> {
  return store.db.selectFrom('connections').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
}

// ---------------------------------------------------------------------------------------------
// 1. Refreshes per expiry under concurrent callers

interface ExpiryResult {
  label: string;
  refreshRequests: number;
  /** When each refresh_token request was answered, ms after the burst started. */
  refreshAtMs: number[];
  /**
   * How many expiries the burst spanned: the first refresh, plus each one at least three quarters
   * of a lifetime (when the service makes the new token due) after the previous. A refresh sooner
   * than that is a duplicate.
   */
  expiriesCrossed: number;
  reuseDetected: number;
  apiUnauthorized: number;
  ok: number;
  statuses: string;
  wallMs: number;
}

/** `callers` concurrent proxied GETs of one connection, spread over the fleet's instances. */
async function burst(
  fleet: Fleet,
  c: { id: string; jwt: string },
  callers: number,
  ttlSeconds: number,
  label: string,
): Promise<ExpiryResult> {
  const before = await fleet.peers.counters();
  const started = Date.now();
  const t0 = performance.now();
  const statuses = await Promise.all(
    Array.from({ length: callers }, async (_, i) => {
      const target = fleet.instances[i % fleet.instances.length]!;
      try {
        const r = await fetch(`${target.url}/api/v1/connections/${c.id}/proxy/items`, {
          headers: { authorization: `Bearer ${c.jwt}` },
        });
        await r.arrayBuffer();
        return r.status;
      } catch {
        return 0;
      }
    }),
  );
  const wallMs = performance.now() - t0;
  const after = await fleet.peers.counters();
  const histogram = new Map<number, number>();
  for (const s of statuses) histogram.set(s, (histogram.get(s) ?? 0) + 1);
  const refreshAtMs = after.refreshTimes.filter((t) => t >= started).map((t) => t - started);
  const dueAfterMs = ttlSeconds * 750;
  return {
    label,
    refreshRequests: (after.tokenRequests.refresh_token ?? 0) - (before.tokenRequests.refresh_token ?? 0),
    refreshAtMs,
    expiriesCrossed: refreshAtMs.filter((t, i) => i === 0 || t - refreshAtMs[i - 1]! >= dueAfterMs).length,
    reuseDetected: after.refreshReuseDetected - before.refreshReuseDetected,
    apiUnauthorized: after.apiUnauthorized - before.apiUnauthorized,
    ok: histogram.get(200) ?? 0,
    statuses: [...histogram]
      .sort((a, b) => a[0] - b[0])
      .map(([s, n]) => `${s === 0 ? 'error' : s}×${n}`)
      .join(' '),
    wallMs,
  };
}

/** A fleet and one connection made through the real flow on its first instance. */
async function fleetWithConnection(
  kind: DatabaseKind,
  instances: number,
  ttlSeconds: number,
): Promise<{ fleet: Fleet; connection: { id: string; jwt: string } }> {
  const fleet = await startFleet(
    kind,
    instances,
    { accessTokenTtlSeconds: ttlSeconds, rotateRefreshToken: true },
    'info',
  );
  try {
    const first = fleet.instances[0]!;
    const jwt = await first.token('bench-user');
    return { fleet, connection: { id: await connectThroughFlow(first.url, jwt, 'alice'), jwt } };
  } catch (error) {
    await fleet.close();
    throw error;
  }
}

/**
 * Baseline first: the same burst on a fleet whose tokens last an hour (no refresh due), after a
 * warm-up burst, so the expiry bursts that follow run on warm code too. Then, with
 * `ttlSeconds` tokens, one burst just after each expiry.
 */
async function benchExpiries(
  kind: DatabaseKind,
  o: { instances: number; callers: number; expiries: number; ttlSeconds: number },
): Promise<ExpiryResult[]> {
  const results: ExpiryResult[] = [];
  {
    const { fleet, connection } = await fleetWithConnection(kind, o.instances, 3600);
    try {
      await burst(fleet, connection, o.callers, 3600, 'warm-up');
      results.push(await burst(fleet, connection, o.callers, 3600, 'no refresh due (baseline, 1 h tokens)'));
    } finally {
      await fleet.close();
    }
  }
  const { fleet, connection } = await fleetWithConnection(kind, o.instances, o.ttlSeconds);
  try {
    const store = fleet.instances[0]!.service.ctx.store;
    for (let expiry = 1; expiry <= o.expiries; expiry++) {
      const row = await readRow(store, connection.id);
      if (row.access_token_expires_at === null) throw new Error('the provider gave no expiry');
      await sleep(Math.max(0, row.access_token_expires_at - Date.now() + 250));
      results.push(await burst(fleet, connection, o.callers, o.ttlSeconds, `expiry ${expiry}`));
    }
    const final = await readRow(store, connection.id);
    if (final.status !== 'active') out(`⚠ the connection ended ${final.status} (${final.status_reason})\n`);
    const warnings = [...fleet.counts].map(([m, n]) => `${m}×${n}`).join(', ');
    if (warnings) out(`log lines above info on ${kind}: ${warnings}\n`);
    return results;
  } finally {
    await fleet.close();
  }
}

function expiryTable(results: ExpiryResult[], callers: number): string {
  const expiries = results.filter((r) => r.label.startsWith('expiry'));
  const baseline = results.find((r) => !r.label.startsWith('expiry'));
  const row = (r: ExpiryResult) => [
    r.label,
    r.refreshRequests,
    r.expiriesCrossed,
    (r.refreshRequests / Math.max(1, r.expiriesCrossed)).toFixed(2),
    r.refreshAtMs.map((t) => Math.round(t)).join(', ') || '–',
    r.reuseDetected,
    r.apiUnauthorized,
    `${r.ok}/${callers}`,
    r.statuses,
    Math.round(r.wallMs),
    baseline === undefined ? '' : `${(r.wallMs / baseline.wallMs).toFixed(2)}×`,
  ];
  const rows = results.map(row);
  rows.push([
    'mean over expiries',
    mean(expiries.map((r) => r.refreshRequests)).toFixed(2),
    mean(expiries.map((r) => r.expiriesCrossed)).toFixed(2),
    mean(expiries.map((r) => r.refreshRequests / Math.max(1, r.expiriesCrossed))).toFixed(2),
    '',
    mean(expiries.map((r) => r.reuseDetected)).toFixed(2),
    mean(expiries.map((r) => r.apiUnauthorized)).toFixed(2),
    `${mean(expiries.map((r) => r.ok)).toFixed(1)}/${callers}`,
    '',
    Math.round(mean(expiries.map((r) => r.wallMs))),
    baseline === undefined ? '' : `${(mean(expiries.map((r) => r.wallMs)) / baseline.wallMs).toFixed(2)}×`,
  ]);
  return markdownTable(
    [
      'burst',
      'provider refresh_token requests',
      'token lifetimes crossed',
      'requests per expiry',
      'answered at (ms into burst)',
      'reuse detections',
      'API 401s',
      'successes',
      'statuses',
      'wall ms',
      'wall vs. baseline',
    ],
    rows,
    'lrrrrrrrlrr',
  );
}

// ---------------------------------------------------------------------------------------------
// 2. Refresh storm

interface StormResult {
  instances: number;
  connections: number;
  providerCalls: number;
  distinctRefreshed: number;
  failures: number;
  failureLogs: number;
  wallMs: number;
  timedOut: boolean;
  rssBefore: number;
  rssPeak: number;
  /** Refresh grants/s sent straight to the provider at the scheduler's concurrency (the baseline): mean of the windows. */
  bareRate: number;
  /** The lowest and highest baseline window. */
  bareRates: [number, number];
  bareConcurrency: number;
  /** Per storm slice: our rows refreshed/s divided by the baseline window just before it. */
  pairRatios: number[];
  /**
   * CPU µs per grant during the storm slices and during the baseline windows: this process (the
   * instances, in-process SQLite, or the bare client) and the provider's process.
   */
  cpu: {
    oursPerRefresh: number;
    /** The PostgreSQL server's processes (0 on SQLite, which runs inside ours). */
    databasePerRefresh: number;
    providerPerRefresh: number;
    barePerGrant: number;
    providerPerBareGrant: number;
  };
}

/**
 * Inserts `n` connection rows sealed with the service's Sealer, each holding the real refresh
 * token of `template` (the provider does not rotate in this part), an expired access token and
 * `next_refresh_at` = now.
 */
async function seedStorm(svc: TestService, template: ConnectionRow, n: number): Promise<string> {
  const { sealer, store } = svc.service.ctx;
  const refreshToken = sealer.open(template.refresh_token_sealed!, {
    table: 'connections',
    rowId: template.id,
    field: 'refresh_token_sealed',
  });
  const accessToken = sealer.open(template.access_token_sealed!, {
    table: 'connections',
    rowId: template.id,
    field: 'access_token_sealed',
  });
  const now = Date.now();
  const batch = 500;
  for (let start = 0; start < n; start += batch) {
    const rows = Array.from({ length: Math.min(batch, n - start) }, (_, k) => {
      const id = randomUUID();
      const ctx = (field: string) => ({ table: 'connections', rowId: id, field });
      return {
        id,
        user_id: `storm-${start + k}`,
        integration_id: template.integration_id,
        status: 'active' as const,
        status_reason: null,
        account_id: template.account_id,
        account_name: template.account_name,
        account_email: template.account_email,
        scopes: template.scopes,
        access_token_sealed: sealer.seal(accessToken, ctx('access_token_sealed')),
        refresh_token_sealed: sealer.seal(refreshToken, ctx('refresh_token_sealed')),
        id_token_sealed: null,
        token_type: 'Bearer',
        access_token_expires_at: now - 60_000,
        last_refreshed_at: null,
        next_refresh_at: now,
        refresh_failures: 0,
        lease_owner: null,
        lease_until: null,
        version: 0,
        created_at: now - 3_600_000,
        updated_at: now - 3_600_000,
      };
    });
    await store.db.insertInto('connections').values(rows).execute();
  }
  return refreshToken;
}

/**
 * The baseline: `n` refresh_token grants sent straight to the provider's token endpoint (client
 * auth as ours, no lease, no database, no sealing) with `concurrency` in flight. Returns grants/s.
 */
async function bareRefreshRate(
  issuer: string,
  refreshToken: string,
  n: number,
  concurrency: number,
): Promise<number> {
  const metadata = (await (await fetch(`${issuer}/.well-known/openid-configuration`)).json()) as {
    token_endpoint: string;
  };
  const authorization = `Basic ${Buffer.from(`nunq:${benchClientSecret}`).toString('base64')}`;
  let left = n;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (left-- > 0) {
        const r = await fetch(metadata.token_endpoint, {
          method: 'POST',
          headers: { authorization, 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }),
        });
        const body = (await r.json()) as { access_token?: string };
        if (r.status !== 200 || body.access_token === undefined)
          throw new Error(`bare refresh: HTTP ${r.status}`);
      }
    }),
  );
  return n / ((performance.now() - started) / 1000);
}

async function countDue(store: Store, now: number): Promise<number> {
  const r = await store.db
    .selectFrom('connections')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('next_refresh_at', '<=', now)
    .where('status', '=', 'active')
    .executeTakeFirstOrThrow();
  return Number(r.n);
}

/**
 * Runs the scheduler on every instance until `rows` more rows are refreshed, nothing is due, or the
 * deadline; returns how many were refreshed, the slice's wall time, and whether nothing is due.
 */
async function runStormSlice(
  instances: TestService[],
  rows: number,
  deadline: number,
): Promise<{ refreshed: number; wallMs: number; done: boolean }> {
  const started = performance.now();
  let refreshed = 0;
  let done = false;
  await Promise.all(
    instances.map(async (svc) => {
      const { store, tokens, clock, logger } = svc.service.ctx;
      while (!done && refreshed < rows && Date.now() < deadline) {
        // One run claims batch after batch as the service's own does; the slice bounds it.
        const maxRows = Math.ceil((rows - refreshed) / instances.length);
        const n = await runDueRefreshes({ store, tokens, clock, logger }, { maxRows });
        refreshed += n;
        if (n > 0) continue;
        if ((await countDue(store, Date.now())) === 0) done = true;
        else await sleep(20);
      }
    }),
  );
  return { refreshed, wallMs: performance.now() - started, done };
}

/**
 * One storm, meant to run in a fresh process (so its RSS is the storm's, not what earlier parts
 * left): `instances` instances, `connections` due rows, the scheduler on every instance.
 */
async function benchStorm(
  kind: DatabaseKind,
  o: { connections: number; instances: number; capMs: number; sliceRows: number; bareWindow: number },
): Promise<StormResult> {
  const fleet = await startFleet(kind, o.instances, { rotateRefreshToken: false }, 'debug');
  try {
    const [first] = fleet.instances;
    const jwt = await first!.token('bench-template');
    const templateId = await connectThroughFlow(first!.url, jwt, 'storm');
    const store = first!.service.ctx.store;
    const refreshToken = await seedStorm(first!, await readRow(store, templateId), o.connections);
    const concurrency = 4 * o.instances; // the scheduler's per-provider concurrency, per instance
    await bareRefreshRate(fleet.peers.issuer, refreshToken, 200, concurrency); // warm-up
    fleet.counts.clear();
    const before = await fleet.peers.counters();
    const runStart = Date.now();
    const deadline = Date.now() + o.capMs;
    const rss = new RssSampler(100).start();
    // Paired slices: a baseline window, then a storm slice, alternately, so both see the same
    // machine (a shared box's load moves more between minutes than between neighbouring seconds).
    const bareWindows: number[] = [];
    const pairRatios: number[] = [];
    const cpu = { ours: 0, providerOurs: 0, database: 0, bare: 0, providerBare: 0, bareGrants: 0 };
    const ownCpuUs = () => {
      const u = process.cpuUsage();
      return u.user + u.system;
    };
    let wallMs = 0;
    let refreshedInSlices = 0;
    let timedOut = true;
    while (Date.now() < deadline) {
      let own = ownCpuUs();
      let provider = processCpuUs(fleet.peers.pid);
      const bare = await bareRefreshRate(fleet.peers.issuer, refreshToken, o.bareWindow, concurrency);
      cpu.bare += ownCpuUs() - own;
      cpu.providerBare += processCpuUs(fleet.peers.pid) - provider;
      cpu.bareGrants += o.bareWindow;
      bareWindows.push(bare);
      own = ownCpuUs();
      provider = processCpuUs(fleet.peers.pid);
      const database = kind === 'postgres' ? commandCpuUs('postgres') : 0;
      const slice = await runStormSlice(fleet.instances, o.sliceRows, deadline);
      cpu.ours += ownCpuUs() - own;
      cpu.providerOurs += processCpuUs(fleet.peers.pid) - provider;
      if (kind === 'postgres') cpu.database += commandCpuUs('postgres') - database;
      wallMs += slice.wallMs;
      refreshedInSlices += slice.refreshed;
      if (slice.refreshed >= o.sliceRows / 2) pairRatios.push(slice.refreshed / (slice.wallMs / 1000) / bare);
      if (slice.done) {
        timedOut = false;
        break;
      }
    }
    const { before: rssBefore, peak: rssPeak } = rss.stop();
    const after = await fleet.peers.counters();
    const count = (where: (q: ReturnType<typeof stormRows>) => ReturnType<typeof stormRows>) =>
      where(stormRows(store))
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow()
        .then((r) => Number(r.n));
    const other = [...fleet.counts].map(([m, n]) => `${m}×${n}`).join(', ');
    if (other) out(`log lines above info (${kind}, ${o.instances} instance(s)): ${other}\n`);
    return {
      instances: o.instances,
      connections: o.connections,
      // The provider also counted the baseline's grants between the slices.
      providerCalls:
        (after.tokenRequests.refresh_token ?? 0) -
        (before.tokenRequests.refresh_token ?? 0) -
        bareWindows.length * o.bareWindow,
      distinctRefreshed: await count((q) => q.where('last_refreshed_at', '>=', runStart)),
      failures: await count((q) =>
        q.where((eb) => eb.or([eb('status', '!=', 'active'), eb('refresh_failures', '>', 0)])),
      ),
      failureLogs:
        (fleet.counts.get('refresh failed') ?? 0) +
        (fleet.counts.get('scheduled refresh did not succeed') ?? 0),
      wallMs,
      timedOut,
      rssBefore,
      rssPeak,
      bareRate: mean(bareWindows),
      bareRates: [Math.min(...bareWindows), Math.max(...bareWindows)],
      bareConcurrency: concurrency,
      pairRatios,
      cpu: {
        oursPerRefresh: cpu.ours / Math.max(1, refreshedInSlices),
        databasePerRefresh: cpu.database / Math.max(1, refreshedInSlices),
        providerPerRefresh: cpu.providerOurs / Math.max(1, refreshedInSlices),
        barePerGrant: cpu.bare / cpu.bareGrants,
        providerPerBareGrant: cpu.providerBare / cpu.bareGrants,
      },
    };
  } finally {
    await fleet.close();
  }
}

function stormRows(store: Store) {
  return store.db.selectFrom('connections').where('user_id', 'like', 'storm-%');
}

function stormTable(kind: DatabaseKind, results: StormResult[]): string {
  return markdownTable(
    [
      'database',
      'instances',
      'connections due',
      'provider refresh calls',
      'rows refreshed',
      'duplicates',
      'failed rows / failure logs',
      'wall s',
      'rows refreshed/s',
      'bare provider grants/s, same concurrency (mean, min–max of windows)',
      'ours/bare, median of paired slices (min–max)',
      'ours/bare, whole storm vs mean bare',
      'CPU µs per refresh: ours / provider / PostgreSQL server',
      'CPU µs per bare grant: client / provider',
      'RSS before',
      'peak RSS',
      'peak/before',
    ],
    results.map((r) => [
      kind,
      r.instances,
      r.connections,
      `${r.providerCalls}${r.providerCalls === r.connections ? '' : ' ⚠'}`,
      r.distinctRefreshed,
      r.providerCalls - r.distinctRefreshed,
      `${r.failures} / ${r.failureLogs}`,
      `${(r.wallMs / 1000).toFixed(1)}${r.timedOut ? ' (cap hit ⚠)' : ''}`,
      Math.round(r.distinctRefreshed / (r.wallMs / 1000)),
      `${Math.round(r.bareRate)} (${r.bareRates.map(Math.round).join('–')})`,
      r.pairRatios.length === 0
        ? '–'
        : `**${median(r.pairRatios).toFixed(2)}×** (${Math.min(...r.pairRatios).toFixed(2)}–${Math.max(...r.pairRatios).toFixed(2)}, ${r.pairRatios.length} pairs)`,
      `${(r.distinctRefreshed / (r.wallMs / 1000) / r.bareRate).toFixed(2)}×`,
      `${Math.round(r.cpu.oursPerRefresh)} / ${Math.round(r.cpu.providerPerRefresh)} / ${kind === 'postgres' ? Math.round(r.cpu.databasePerRefresh) : '–'}`,
      `${Math.round(r.cpu.barePerGrant)} / ${Math.round(r.cpu.providerPerBareGrant)}`,
      mb(r.rssBefore),
      mb(r.rssPeak),
      `${(r.rssPeak / r.rssBefore).toFixed(2)}× (+${mb(r.rssPeak - r.rssBefore)})`,
    ]),
    'lrrrrrrrrrrrrrrrr',
  );
}

async function main(): Promise<void> {
  const only = option('only', 'all');
  const callers = numberOption('callers', 500);
  const expiries = numberOption('expiries', 3);
  const ttlSeconds = numberOption('ttl', 3);
  const storm = numberOption('storm', 10_000);
  const capMs = numberOption('cap-seconds', 180) * 1000;
  const sliceRows = numberOption('slice', 1000);
  const bareWindow = numberOption('bare-window', 500);
  out(`# Refresh benchmarks\n\n${machineLine()}\n`);
  out(
    'oidc-provider and the demo API run in a child process. The service instances of a part run in one ' +
      'process (each its own TokenService, database pool and instance id, coordinating only through the ' +
      'database): this one for the expiry bursts, a fresh child per storm run.\n',
  );

  if (only === 'all' || only === 'expiry') {
    out(
      `\n## Refreshes per expiry: ${callers} concurrent proxied calls over 3 instances, ` +
        `${ttlSeconds} s access tokens, refresh token rotation on, target 1.00 per expiry\n`,
    );
    for (const kind of ['postgres', 'sqlite'] as const) {
      const results = await benchExpiries(kind, { instances: 3, callers, expiries, ttlSeconds });
      out(`\n### ${kind}\n\n${expiryTable(results, callers)}\n`);
    }
  }

  if (only === 'all' || only === 'storm') {
    out(
      `\n## Refresh storm: ${storm} connections due at once, scheduler (runDueRefreshes, batches of 200 ` +
        'claimed back to back, 4 per provider per instance) until nothing is due; cap ' +
        `${capMs / 1000} s per run\n\nEvery row holds the same real refresh token: oidc-provider runs with ` +
        'rotateRefreshToken: false for this part, so one grant backs all rows. Each run is a fresh process ' +
        '(its instances, one real connection, the seeded rows); RSS is that process, sampled every 100 ms, ' +
        'peak during the storm against just before it. SQLite runs one instance (its deployment model). ' +
        'Baseline: refresh_token grants sent straight to the token endpoint (same client auth, no ' +
        'service) with 4 in flight per instance, the scheduler’s concurrency: 200 to warm up, then ' +
        `paired with the storm: ${bareWindow} bare grants, then a slice of ${sliceRows} rows refreshed ` +
        'by the scheduler (one run bounded by `maxRows`), alternately until nothing is due; each slice’s rate is divided by the ' +
        'baseline window just before it, and the median of those ratios is the figure (a shared ' +
        'machine’s load moves between minutes, far less between neighbouring seconds). Wall time and ' +
        'rows/s count the storm slices only.\n',
    );
    const kinds = (
      flag('no-storm-sqlite') ? ['postgres'] : option('storm-kinds', 'postgres,sqlite').split(',')
    ) as DatabaseKind[];
    for (const kind of kinds) {
      const results: StormResult[] = [];
      for (const instances of kind === 'sqlite'
        ? [1]
        : option('storm-instances', '1,3').split(',').map(Number)) {
        const child = forkChild(thisFile, ['--role', 'storm']);
        try {
          results.push(
            await child.call<StormResult>('run', {
              kind,
              connections: storm,
              instances,
              capMs,
              sliceRows,
              bareWindow,
            }),
          );
        } finally {
          await child.close();
        }
      }
      out(`\n${stormTable(kind, results)}\n`);
      for (const r of results.filter((x) => x.timedOut)) {
        const rate = r.distinctRefreshed / (r.wallMs / 1000);
        out(
          `⚠ ${kind}, ${r.instances} instance(s): cap hit after ${r.distinctRefreshed} refreshes ` +
            `(${rate.toFixed(0)}/s); ${r.connections} would take ~${Math.round(r.connections / rate)} s. ` +
            `Re-run with --storm ${Math.floor((rate * capMs) / 1000 / 1000) * 1000}.\n`,
        );
      }
    }
  }
}

if (isMainModule(import.meta.url)) {
  if (option('role', '') === 'storm') {
    serveParent({
      run: (payload) => {
        const o = payload as {
          kind: DatabaseKind;
          connections: number;
          instances: number;
          capMs: number;
          sliceRows: number;
          bareWindow: number;
        };
        return benchStorm(o.kind, o);
      },
    });
  } else await main();
}
