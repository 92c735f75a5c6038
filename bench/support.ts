/**
 * Shared helpers of the token-lifecycle and proxy benchmarks: command-line options, statistics,
 * an RSS sampler, child processes with a tiny request/reply protocol over IPC, the real protocol
 * peers (panva's oidc-provider and the demo API) in a child process, and a connection made through
 * the real authorization code flow. Run as a script, this file is the peers child:
 * `node --import tsx bench/support.ts peers` (started by `startPeersProcess`, never by hand).
 */
import { type ChildProcess, fork } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { cpus } from 'node:os';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import pino from 'pino';
import { rateLimitCategories } from '../src/config/index.js';
import { generateKey } from '../src/crypto/index.js';
import { startDemoApi } from '../src/demo/demo-api.js';
import { startOidcProvider } from '../src/demo/oidc-provider.js';
import { createLogger, type Logger } from '../src/observability/logger.js';
import { freePort } from '../test/support/service.js';
import { UserAgent } from '../test/support/user-agent.js';

/** Writes to stdout (the linter forbids console.log). */
export function out(text: string): void {
  process.stdout.write(text);
}

/** `--name value` from the command line, or the default. */
export function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  const value = i === -1 ? undefined : process.argv[i + 1];
  return value === undefined ? fallback : value;
}

/** A positive number option; refuses anything else, naming the option. */
export function numberOption(name: string, fallback: number): number {
  const value = Number(option(name, String(fallback)));
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number`);
  return value;
}

/** Whether `--name` was given. */
export function flag(name: string): boolean {
  return process.argv.includes(`--${name}`);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}

export function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function mean(values: number[]): number {
  return values.length === 0 ? Number.NaN : values.reduce((a, b) => a + b, 0) / values.length;
}

/** The nearest-rank percentile (0 < p ≤ 100) of values already sorted ascending. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** A markdown table; `align` is one of 'l' | 'r' per column (default left). */
export function markdownTable(headers: string[], rows: Array<Array<string | number>>, align = ''): string {
  const sep = headers.map((_, i) => (align[i] === 'r' ? '---:' : '---'));
  return [headers, sep, ...rows.map((r) => r.map(String))].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

export const mb = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(0)} MB`;

/** The machine, for the report: cores, CPU model, node version. */
export function machineLine(): string {
  const model = cpus()[0]?.model.replace(/\s+/g, ' ').trim() ?? 'unknown CPU';
  return `nproc ${cpus().length} (${model}), node ${process.version}, ${process.platform}/${process.arch}`;
}

/** Samples this process's RSS every `everyMs` (default 100 ms) and keeps the peak. */
export class RssSampler {
  #timer: NodeJS.Timeout | undefined;
  #peak = 0;
  readonly before: number;

  constructor(readonly everyMs = 100) {
    this.before = process.memoryUsage().rss;
  }

  start(): this {
    this.#peak = this.before;
    this.#timer = setInterval(() => {
      this.#peak = Math.max(this.#peak, process.memoryUsage().rss);
    }, this.everyMs);
    return this;
  }

  /** Stops sampling; returns the RSS before and the peak while it ran (bytes). */
  stop(): { before: number; peak: number } {
    clearInterval(this.#timer);
    this.#peak = Math.max(this.#peak, process.memoryUsage().rss);
    return { before: this.before, peak: this.#peak };
  }
}

/** A pino logger at `level` writing to /dev/null: the serialising cost stays, the output goes. */
export function discardingLogger(level = 'info'): Logger {
  // As pino writes to stdout by default: asynchronously, a write per line when the last one is done.
  return createLogger({ level, destination: pino.destination({ dest: '/dev/null', sync: false }) });
}

/** One encryption key shared by every instance of a benchmark (each would otherwise make its own). */
export function sharedEncryption(): { activeKey: string; keys: Array<{ id: string; key: string }> } {
  return { activeKey: 'k1', keys: [{ id: 'k1', key: generateKey() }] };
}

export const benchClientSecret = 'bench-client-secret-0123456789abcdef';

/**
 * The `rateLimits` of every benchmark: on, so the limiter's cost is measured as deployed (two
 * in-memory counts per request), with limits no run reaches (one user at thousands of calls a
 * second, many sign-ins from one address).
 */
export const benchRateLimits =
  // `--rate-limits off` (any bench): the limiter left out, to measure what it costs.
  option('rate-limits', 'on') === 'off'
    ? { enabled: false }
    : Object.fromEntries(
        rateLimitCategories.map((category) => [
          category,
          { windowSeconds: 60, perUser: 1_000_000_000, perAddress: 1_000_000_000 },
        ]),
      );

/** The provider and the `items` integration of the demo API, as `startTestService` takes them. */
export function catalogFor(peers: { issuer: string; apiUrl: string }): {
  providers: unknown[];
  integrations: unknown[];
} {
  return {
    providers: [
      { id: 'demo', type: 'oidc', issuer: peers.issuer, clientId: 'nunq', clientSecret: benchClientSecret },
    ],
    integrations: [
      {
        id: 'items',
        name: 'Items',
        provider: 'demo',
        scopes: ['openid', 'profile', 'email', 'offline_access', 'items:read'],
        api: { baseUrl: peers.apiUrl },
      },
    ],
  };
}

/**
 * Makes a connection the way a person does: a session from a JWT, `/connect/items` and its Connect button, sign-in and
 * consent at oidc-provider, the callback. Returns the new connection id.
 */
export async function connectThroughFlow(serviceUrl: string, jwt: string, login: string): Promise<string> {
  const ua = new UserAgent();
  const session = await ua.follow(`${serviceUrl}/session?token=${jwt}&return_to=/`, { maxHops: 1 });
  if (session.response.status !== 200) throw new Error(`session: HTTP ${session.response.status}`);
  // `/connect/items` is a confirmation page; its Connect button (a POST) starts the flow.
  const callback = await ua.signInAtOidcProvider(await ua.startConnect(serviceUrl, 'items'), login);
  const done = await ua.get(callback.href);
  const back = new URL(done.headers.get('location') ?? '/', serviceUrl);
  const id = back.searchParams.get('connection');
  if (back.searchParams.get('outcome') !== 'connected' || id === null) {
    throw new Error(`callback: outcome ${back.searchParams.get('outcome')}`);
  }
  return id;
}

// ---------------------------------------------------------------------------------------------
// Child processes: the parent calls `child.call(type, payload)`, the child answers from a handler.

interface CallMessage {
  call: number;
  type: string;
  payload: unknown;
}
interface ReplyMessage {
  reply: number;
  result?: unknown;
  error?: string;
}

export interface ChildHandle {
  readonly pid: number;
  call<T = unknown>(type: string, payload?: unknown): Promise<T>;
  /** Asks the child to close (its `close` handler, then exit); kills it after `timeoutMs`. */
  close(timeoutMs?: number): Promise<void>;
}

/** Forks `file` with `args` (inheriting `--import tsx` unless `execArgv` is given). */
/**
 * The V8 flags `npm start` runs the service with (package.json): a 32 MiB young generation, so
 * that per-request garbage dies young. Benchmarks give them to every server they compare.
 */
export const serverNodeFlags = ['--max-semi-space-size=32'];

export function forkChild(file: string, args: string[], execArgv: string[] = process.execArgv): ChildHandle {
  const child: ChildProcess = fork(file, args, { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let next = 1;
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  child.on('message', (m: ReplyMessage) => {
    const w = waiting.get(m.reply);
    if (w === undefined) return;
    waiting.delete(m.reply);
    if (m.error !== undefined) w.reject(new Error(`child ${file}: ${m.error}`));
    else w.resolve(m.result);
  });
  child.once('exit', (code) => {
    for (const w of waiting.values()) w.reject(new Error(`child ${file} exited with ${code}`));
    waiting.clear();
  });
  return {
    pid: child.pid ?? -1,
    call<T>(type: string, payload?: unknown): Promise<T> {
      const id = next++;
      return new Promise<T>((resolve, reject) => {
        waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
        child.send({ call: id, type, payload } satisfies CallMessage);
      });
    },
    async close(timeoutMs = 10_000) {
      if (child.exitCode !== null) return;
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      try {
        await this.call('close').catch(() => {});
        await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/**
 * The child side: answers calls from `handlers`; `close` runs the given handler (if any) and then
 * exits. A child whose parent goes away exits too.
 */
export function serveParent(own: Record<string, (payload: unknown) => Promise<unknown>>): void {
  const handlers = { ...builtInHandlers(), ...own };
  process.on('disconnect', () => process.exit(0));
  process.on('message', (m: CallMessage) => {
    const handler = handlers[m.type];
    const answer = (r: Omit<ReplyMessage, 'reply'>) => process.send?.({ reply: m.call, ...r });
    if (m.type === 'close') {
      void (handler ?? (async () => undefined))(m.payload)
        .catch(() => {})
        .finally(() => {
          answer({ result: null });
          setTimeout(() => process.exit(0), 50);
        });
      return;
    }
    if (handler === undefined) {
      answer({ error: `no handler for ${m.type}` });
      return;
    }
    handler(m.payload).then(
      (result) => answer({ result: result ?? null }),
      (error: unknown) => answer({ error: error instanceof Error ? error.message : String(error) }),
    );
  });
}

/**
 * What every child answers: `cpu` (its CPU time so far, µs, user + system) and
 * `profile-start` / `profile-stop` (a CPU profile of its main thread over just that window,
 * written to the `.cpuprofile` path given to `profile-stop`).
 */
function builtInHandlers(): Record<string, (payload: unknown) => Promise<unknown>> {
  let session: Session | undefined;
  return {
    async cpu() {
      const { user, system } = process.cpuUsage();
      return user + system;
    },
    async 'profile-start'() {
      session = new Session();
      session.connect();
      await session.post('Profiler.enable');
      await session.post('Profiler.setSamplingInterval', { interval: 200 });
      await session.post('Profiler.start');
      return null;
    },
    async 'heap-start'() {
      session = new Session();
      session.connect();
      await session.post('HeapProfiler.enable');
      await session.post('HeapProfiler.startSampling', {
        samplingInterval: 1024,
        includeObjectsCollectedByMajorGC: true,
        includeObjectsCollectedByMinorGC: true,
      });
      return null;
    },
    async 'heap-stop'(payload) {
      if (session === undefined) throw new Error('no heap profile running');
      const { profile } = await session.post('HeapProfiler.stopSampling');
      session.disconnect();
      session = undefined;
      const file = (payload as { file: string }).file;
      writeFileSync(file, JSON.stringify(profile));
      return file;
    },
    async 'profile-stop'(payload) {
      if (session === undefined) throw new Error('no profile running');
      const { profile } = await session.post('Profiler.stop');
      session.disconnect();
      session = undefined;
      const file = (payload as { file: string }).file;
      writeFileSync(file, JSON.stringify(profile));
      return file;
    },
  };
}

/** The file this module lives in, for forking it as the peers child. */
const supportFile = new URL(import.meta.url).pathname;

/** Whether the module at `moduleUrl` is the script node was started with. */
export function isMainModule(moduleUrl: string): boolean {
  return process.argv[1] !== undefined && moduleUrl === pathToFileURL(resolve(process.argv[1])).href;
}

// ---------------------------------------------------------------------------------------------
// The real protocol peers in their own process, so their CPU and memory are not ours.

export interface PeersOptions {
  /** Redirect URIs of the `nunq` client (one per service instance). */
  redirectUris: string[];
  accessTokenTtlSeconds?: number;
  rotateRefreshToken?: boolean;
}

export interface PeerCounters {
  /** Token endpoint requests by grant type. */
  tokenRequests: Record<string, number>;
  refreshReuseDetected: number;
  /** When each refresh_token grant was answered (epoch ms), oldest first. */
  refreshTimes: number[];
  apiRequests: number;
  apiUnauthorized: number;
}

export interface Peers {
  issuer: string;
  apiUrl: string;
  pid: number;
  counters(): Promise<PeerCounters>;
  close(): Promise<void>;
}

/** Starts oidc-provider and the demo API (JWT access tokens for it) in a child process. */
export async function startPeersProcess(options: PeersOptions): Promise<Peers> {
  const child = forkChild(supportFile, ['peers']);
  const ready = await child.call<{ issuer: string; apiUrl: string }>('start', options);
  return {
    ...ready,
    pid: child.pid,
    counters: () => child.call<PeerCounters>('counters'),
    close: () => child.close(),
  };
}

async function servePeers(): Promise<void> {
  let running:
    | {
        provider: Awaited<ReturnType<typeof startOidcProvider>>;
        api: Awaited<ReturnType<typeof startDemoApi>>;
      }
    | undefined;
  const refreshTimes: number[] = [];
  serveParent({
    async start(payload) {
      const o = payload as PeersOptions;
      const apiPort = await freePort();
      const audience = `http://127.0.0.1:${apiPort}/`;
      const provider = await startOidcProvider({
        clients: [
          {
            client_id: 'nunq',
            client_secret: benchClientSecret,
            redirect_uris: o.redirectUris,
            grant_types: ['authorization_code', 'refresh_token'],
            token_endpoint_auth_method: 'client_secret_basic',
          },
        ],
        resource: { url: audience, scopes: ['items:read'] },
        ...(o.accessTokenTtlSeconds === undefined ? {} : { accessTokenTtlSeconds: o.accessTokenTtlSeconds }),
        ...(o.rotateRefreshToken === undefined ? {} : { rotateRefreshToken: o.rotateRefreshToken }),
      });
      const api = await startDemoApi({ issuer: provider.issuer, audience, port: apiPort });
      const record = (ctx: { oidc?: { params?: { grant_type?: unknown } } }) => {
        if (ctx.oidc?.params?.grant_type === 'refresh_token') refreshTimes.push(Date.now());
      };
      provider.provider.on('grant.success', record);
      provider.provider.on('grant.error', record);
      running = { provider, api };
      return { issuer: provider.issuer, apiUrl: api.url };
    },
    async counters() {
      if (running === undefined) throw new Error('not started');
      const { provider, api } = running;
      return {
        tokenRequests: { ...provider.counters.tokenRequests },
        refreshReuseDetected: provider.counters.refreshReuseDetected,
        refreshTimes: refreshTimes.slice(-50),
        apiRequests: api.counters.requests,
        apiUnauthorized: api.counters.unauthorized,
      } satisfies PeerCounters;
    },
    async close() {
      await running?.api.close();
      await running?.provider.close();
    },
  });
}

// ---------------------------------------------------------------------------------------------
// CPU profiles: where the time goes, by area and by function.

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

/**
 * Summarises a `.cpuprofile`: self time by area (package, `src/` file or node internals; a
 * native frame counts for the JS frame that called it), the top functions by self time, and the
 * top functions by total time (each sample counted once per function on its stack).
 */
export function summarizeCpuProfile(file: string, top = 25): string {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as {
    nodes: ProfileNode[];
    samples: number[];
    timeDeltas: number[];
  };
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  const areas = new Map<string, number>();
  let sum = 0;
  const measuring = (leaf: number) => {
    for (let id: number | undefined = leaf; id !== undefined; id = parent.get(id)) {
      if (byId.get(id)!.callFrame.url.endsWith('/bench/support.ts')) return true;
    }
    return false;
  };
  profile.samples.forEach((leaf, i) => {
    const us = profile.timeDeltas[i] ?? 0;
    if (measuring(leaf)) return; // the profiler's own start/stop calls
    sum += us;
    const frame = byId.get(leaf)!.callFrame;
    // A native frame (no url) is labelled and counted by its nearest JS caller.
    let caller: number | undefined = leaf;
    while (caller !== undefined && byId.get(caller)!.callFrame.url === '') caller = parent.get(caller);
    const callerFrame = caller === undefined ? undefined : byId.get(caller)!.callFrame;
    const selfName =
      frame.url === '' && callerFrame !== undefined && !frame.functionName.startsWith('(')
        ? `${frame.functionName || '(native)'} ← ${frameName(callerFrame)}`
        : frameName(frame);
    add(self, selfName, us);
    add(areas, areaOf(frame.url === '' && callerFrame !== undefined ? callerFrame : frame), us);
    const seen = new Set<string>();
    for (let id: number | undefined = leaf; id !== undefined; id = parent.get(id)) {
      const f = byId.get(id)!.callFrame;
      if (f.url === '') continue;
      const name = frameName(f);
      if (seen.has(name)) continue;
      seen.add(name);
      add(total, name, us);
    }
  });
  const pct = (us: number) => `${((100 * us) / sum).toFixed(1)}%`;
  const sorted = (m: Map<string, number>, n: number, keep: (k: string) => boolean = () => true) =>
    [...m]
      .filter(([k]) => keep(k))
      .sort((a, b) => b[1] - a[1])
      .slice(0, n);
  return [
    `self time by area (${(sum / 1e6).toFixed(1)} s sampled; native frames count for their JS caller):`,
    '',
    markdownTable(
      ['area', 'self'],
      sorted(areas, 20).map(([k, v]) => [k, pct(v)]),
      'lr',
    ),
    '',
    `top ${top} functions by self time:`,
    '',
    markdownTable(
      ['function', 'self'],
      sorted(self, top).map(([k, v]) => [`\`${k}\``, pct(v)]),
      'lr',
    ),
    '',
    `top ${top} functions by total time (the synchronous part of each call and what it calls):`,
    '',
    markdownTable(
      ['function', 'total'],
      sorted(
        total,
        top,
        (k) => !k.startsWith('processTicksAndRejections') && !k.startsWith('runMicrotasks'),
      ).map(([k, v]) => [`\`${k}\``, pct(v)]),
      'lr',
    ),
  ].join('\n');
}

function add(m: Map<string, number>, key: string, us: number): void {
  m.set(key, (m.get(key) ?? 0) + us);
}

function frameName(f: ProfileNode['callFrame']): string {
  if (f.url === '') return f.functionName || '(native)';
  // Code compiled by tsx reports line 1 for everything: leave the line out there.
  const line = f.lineNumber > 0 ? `:${f.lineNumber + 1}` : '';
  return `${f.functionName || '(anonymous)'} ${shortUrl(f.url)}${line}`;
}

function shortUrl(url: string): string {
  const nm = url.lastIndexOf('node_modules/');
  if (nm !== -1) return url.slice(nm + 'node_modules/'.length);
  const src = url.indexOf('/src/');
  if (src !== -1) return url.slice(src + 1);
  return url.replace(/^file:\/\//, '');
}

function areaOf(f: ProfileNode['callFrame']): string {
  const { url, functionName } = f;
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)';
  const nm = url.lastIndexOf('node_modules/');
  if (nm !== -1) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/');
    return rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1]}` : (rest[0] ?? url);
  }
  if (url.startsWith('node:')) return url.split('/').slice(0, 2).join('/');
  const src = url.indexOf('/src/');
  if (src !== -1) return url.slice(src + 1);
  return url;
}

if (isMainModule(import.meta.url) && process.argv[2] === 'peers') {
  await servePeers();
}
