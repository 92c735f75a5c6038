/**
 * Shared setup of the token lifecycle tests: a real oidc-provider (3-second access tokens, refresh
 * token rotation with reuse detection) with a switchable fault middleware on its token endpoint,
 * the demo API behind it, a webhook receiver, and any number of service instances on ONE test
 * database (same encryption key, same config), plus helpers to connect a user through the real
 * sign-in pages and to watch what the service and the provider did.
 */

import { spawn } from 'node:child_process';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { generateKey } from '../../src/crypto/index.js';
import { type RunningDemoApi, startDemoApi } from '../../src/demo/demo-api.js';
import { type RunningOidcProvider, startOidcProvider } from '../../src/demo/oidc-provider.js';
import { createOutbound, type OutboundFetch } from '../../src/oauth/outbound.js';
import type { ServiceOptions } from '../../src/service/service.js';
import type { DatabaseKind } from '../../src/store/database.js';
import type { ConnectionView } from '../../src/store/repos/connections.js';
import { createTestDatabase, type TestDatabase } from './databases.js';
import { createTokenFaults, type TokenFaults } from './fault.js';
import { freePort, startTestService, type TestService, testJwtSecret } from './service.js';
import { signedInAgent } from './user-agent.js';
import { type RecordingServer, startRecordingServer } from './webhook-receiver.js';

export const lifecycleClientSecret = 'lifecycle-test-client-secret-0123456789';
export const lifecycleWebhookSecret = 'lifecycle-webhook-secret-0123456789';
export const accessTokenTtlSeconds = 3;
/** The integration every lifecycle test connects. */
export const itemsIntegration = 'items';

/** One call to the provider's token endpoint as the service made it, seen through its outbound fetch. */
export interface TokenCall {
  /** When the request was sent. */
  startedAt: number;
  /** When the answer arrived. */
  at: number;
  /** Which service instance made it (index into `Lifecycle.services` order of start). */
  instance: number;
  grantType: string | undefined;
  /** The refresh token presented (refresh_token grant). */
  presentedRefreshToken: string | undefined;
  status: number;
  accessToken: string | undefined;
  refreshToken: string | undefined;
  idToken: string | undefined;
}

export interface LifecycleOptions {
  kind: DatabaseKind;
  /** How many service ports to register as redirect URIs up front (default 6). */
  ports?: number;
  /** Extra integrations (same provider) besides `items`. */
  extraIntegrations?: unknown[];
  /** Configure the webhook receiver as the service's webhook endpoint (default true). */
  webhooks?: boolean;
  /** Access token lifetime at the provider (default `accessTokenTtlSeconds`, 3 s). */
  accessTokenTtlSeconds?: number;
  /** The `rateLimits` section of every instance (default: the config's defaults). */
  rateLimits?: Record<string, unknown>;
}

export interface Lifecycle {
  database: TestDatabase;
  oidc: RunningOidcProvider;
  api: RunningDemoApi;
  faults: TokenFaults;
  receiver: RecordingServer;
  /** Every token-endpoint call any in-process instance made, in order. */
  tokenCalls: TokenCall[];
  /** Every in-process instance started so far, in order. */
  services: TestService[];
  /** Log lines at `warn` or above of every in-process instance (for failure messages). */
  problemLogs(): string[];
  /** The raw (unvalidated) config shared by every instance, minus `server` (for child processes). */
  sharedConfig(): Record<string, unknown>;
  /** A service port registered at the provider (for a child process). */
  takePort(): number;
  /** Starts one more instance on the shared database. */
  startService(serviceOptions?: ServiceOptions): Promise<TestService>;
  /** Starts one more instance on the shared database in a child process (see child-service.ts). */
  startChildService(options?: { leaseMs?: number; background?: boolean }): Promise<ChildService>;
  /** Signs `userId` in at `svc`, connects `integration` through the provider's real pages as `login`; the connection id. */
  connect(svc: TestService, userId: string, login?: string, integration?: string): Promise<string>;
  /** Reconnects `connectionId` via the API and the provider's pages; the outcome and connection id. */
  reconnect(
    svc: TestService,
    userId: string,
    connectionId: string,
    login?: string,
  ): Promise<{ outcome: string | null; connection: string | null }>;
  /** `GET /api/v1/connections/:id` as `userId`. */
  connection(svc: TestService, userId: string, connectionId: string): Promise<ConnectionView>;
  /** Sleeps until the connection's access token has expired (by its `accessTokenExpiresAt`) plus `extraMs`. */
  waitForExpiry(svc: TestService, userId: string, connectionId: string, extraMs?: number): Promise<void>;
  /** `provider.counters.tokenRequests.refresh_token` (0 when none yet). */
  refreshCount(): number;
  close(): Promise<void>;
}

/** Starts provider, demo API, fault switch and webhook receiver; services are started on demand. */
export async function startLifecycle(options: LifecycleOptions): Promise<Lifecycle> {
  const database = await createTestDatabase(options.kind);
  const apiPort = await freePort();
  const ports = await Promise.all(Array.from({ length: options.ports ?? 6 }, () => freePort()));
  const freePorts = [...ports];
  const faults = createTokenFaults();
  const receiver = await startRecordingServer();
  const oidc = await startOidcProvider({
    clients: [
      {
        client_id: 'nunq',
        client_secret: lifecycleClientSecret,
        redirect_uris: ports.map((p) => `http://127.0.0.1:${p}/oauth/callback`),
        grant_types: ['authorization_code', 'refresh_token'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    accessTokenTtlSeconds: options.accessTokenTtlSeconds ?? accessTokenTtlSeconds,
    rotateRefreshToken: true,
    resource: { url: `http://127.0.0.1:${apiPort}/`, scopes: ['items:read'] },
    accounts: { alice: { name: 'Alice Example', email: 'alice@example.com' } },
  });
  oidc.provider.use(faults.middleware as unknown as Parameters<typeof oidc.provider.use>[0]);
  const api = await startDemoApi({
    issuer: oidc.issuer,
    audience: `http://127.0.0.1:${apiPort}/`,
    port: apiPort,
  });
  const encryption = { activeKey: 'k1', keys: [{ id: 'k1', key: generateKey() }] };
  const providers = [
    { id: 'demo', type: 'oidc', issuer: oidc.issuer, clientId: 'nunq', clientSecret: lifecycleClientSecret },
  ];
  const integrations = [
    {
      id: itemsIntegration,
      name: 'Items',
      provider: 'demo',
      scopes: ['openid', 'profile', 'email', 'offline_access', 'items:read'],
      api: { baseUrl: api.url },
    },
    ...(options.extraIntegrations ?? []),
  ];
  const webhooks =
    options.webhooks === false ? [] : [{ url: `${receiver.url}/hooks/nunq`, secret: lifecycleWebhookSecret }];
  const tokenCalls: TokenCall[] = [];
  const services: TestService[] = [];
  const children: ChildService[] = [];
  const tokenEndpoint = `${oidc.issuer}/token`;

  const takePort = () => {
    const port = freePorts.shift();
    if (port === undefined) throw new Error('lifecycle: no registered service port left; raise `ports`');
    return port;
  };

  /** The real outbound fetch, recording what the token endpoint was asked and answered. */
  const recordingFetch = (instance: number): OutboundFetch => {
    // The transports production uses: token requests through smallFetch (answers read whole),
    // everything else (discovery, the MCP gateway's event streams) through the streaming fetch.
    const outbound = createOutbound({ allow: ['127.0.0.0/8'], timeoutMs: 10_000 });
    const inner = outbound.smallFetch;
    return async (input, init) => {
      if (String(input) !== tokenEndpoint) return outbound.fetch(input, init);
      const form = formOf(init?.body);
      const startedAt = Date.now();
      const response = await inner(input, init);
      let body: Record<string, unknown> = {};
      try {
        body = (await response.clone().json()) as Record<string, unknown>;
      } catch {
        // Not JSON (a fault answer): nothing to record but the status.
      }
      const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
      tokenCalls.push({
        startedAt,
        at: Date.now(),
        instance,
        grantType: form?.get('grant_type') ?? undefined,
        presentedRefreshToken: form?.get('refresh_token') ?? undefined,
        status: response.status,
        accessToken: str(body.access_token),
        refreshToken: str(body.refresh_token),
        idToken: str(body.id_token),
      });
      return response;
    };
  };

  const sharedConfig = () => ({
    database: { url: database.url },
    encryption,
    auth: { mode: 'jwt', jwt: { secret: testJwtSecret }, admins: [] },
    outbound: { allow: ['127.0.0.0/8'] },
    webhooks,
    providers,
    integrations,
    mcpServers: [],
    ...(options.rateLimits === undefined ? {} : { rateLimits: options.rateLimits }),
  });

  const connection = async (svc: TestService, userId: string, connectionId: string) => {
    const r = await svc.api(userId, `/api/v1/connections/${connectionId}`);
    if (r.status !== 200) throw new Error(`GET connection ${connectionId}: HTTP ${r.status}`);
    return (await r.json()) as ConnectionView;
  };

  return {
    database,
    oidc,
    api,
    faults,
    receiver,
    tokenCalls,
    services,
    problemLogs: () =>
      services.flatMap((svc, i) =>
        svc.logs.filter((l) => (JSON.parse(l) as { level: number }).level >= 40).map((l) => `#${i} ${l}`),
      ),
    sharedConfig,
    takePort,
    async startService(serviceOptions = {}) {
      const instance = services.length;
      const svc = await startTestService({
        database,
        port: takePort(),
        encryption,
        providers,
        integrations,
        ...(options.rateLimits === undefined ? {} : { rateLimits: options.rateLimits }),
        webhooks,
        serviceOptions: { fetch: recordingFetch(instance), ...serviceOptions },
      });
      services.push(svc);
      return svc;
    },
    async startChildService(childOptions = {}) {
      const port = takePort();
      const config = {
        ...sharedConfig(),
        server: { port, host: '127.0.0.1', publicUrl: `http://127.0.0.1:${port}` },
      };
      const child = await spawnChildService(config, childOptions);
      children.push(child);
      return child;
    },
    async connect(svc, userId, login = 'alice', integration = itemsIntegration) {
      const ua = await signedInAgent(svc, userId);
      const callback = await ua.signInAtOidcProvider(await ua.startConnect(svc.url, integration), login);
      const done = await ua.get(callback.href);
      const back = new URL(done.headers.get('location') ?? '/', svc.url);
      const id = back.searchParams.get('connection');
      if (back.searchParams.get('outcome') !== 'connected' || id === null) {
        throw new Error(`connect: outcome ${back.searchParams.get('outcome')}`);
      }
      return id;
    },
    async reconnect(svc, userId, connectionId, login = 'alice') {
      // The Integrations page's Reconnect button: a flow started in this browser finishes here
      // without a confirmation (one started through the API would ask once more).
      const ua = await signedInAgent(svc, userId);
      const authorizationUrl = await ua.startReconnect(svc.url, connectionId);
      const callback = await ua.signInAtOidcProvider(authorizationUrl, login);
      const done = await ua.get(callback.href);
      const back = new URL(done.headers.get('location') ?? '/', svc.url);
      return { outcome: back.searchParams.get('outcome'), connection: back.searchParams.get('connection') };
    },
    connection,
    async waitForExpiry(svc, userId, connectionId, extraMs = 150) {
      const c = await connection(svc, userId, connectionId);
      if (c.accessTokenExpiresAt === null) throw new Error('the connection has no access token expiry');
      const wait = Date.parse(c.accessTokenExpiresAt) + extraMs - Date.now();
      if (wait > 0) await sleep(wait);
    },
    refreshCount: () => oidc.counters.tokenRequests.refresh_token ?? 0,
    async close() {
      for (const child of children) child.kill('SIGKILL');
      await Promise.allSettled(children.map((c) => c.exited));
      await Promise.allSettled(services.map((s) => s.close()));
      await api.close().catch(() => {});
      await oidc.close().catch(() => {});
      await receiver.close().catch(() => {});
      await database.drop();
    },
  };
}

/** A service instance running in a child process. */
export interface ChildService {
  url: string;
  pid: number;
  /** What the child wrote to stderr (its warn/error log lines). */
  stderr: string[];
  /** Resolves with the exit signal (or code) once the process is gone. */
  exited: Promise<string>;
  kill(signal: NodeJS.Signals): void;
}

const childScript = fileURLToPath(new URL('./child-service.ts', import.meta.url));

async function spawnChildService(
  config: Record<string, unknown>,
  options: { leaseMs?: number; background?: boolean },
): Promise<ChildService> {
  const child = spawn(process.execPath, ['--import', 'tsx', childScript], {
    env: {
      ...process.env,
      NUNQ_CHILD_CONFIG: JSON.stringify(config),
      NUNQ_CHILD_OPTIONS: JSON.stringify(options),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stderr: string[] = [];
  child.stderr.setEncoding('utf8').on('data', (d: string) => stderr.push(d));
  const exited = new Promise<string>((resolve) =>
    child.once('exit', (code, signal) => resolve(signal ?? `exit ${code}`)),
  );
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(
      () => reject(new Error(`child service did not start: ${stderr.join('')}`)),
      30_000,
    );
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = /LISTENING (\S+)/.exec(out);
      if (m?.[1] !== undefined) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    void exited.then((how) => {
      clearTimeout(timer);
      reject(new Error(`child service ended (${how}) before listening: ${stderr.join('')}`));
    });
  });
  return { url, pid: child.pid!, stderr, exited, kill: (signal) => child.kill(signal) };
}

function formOf(body: unknown): URLSearchParams | undefined {
  if (body instanceof URLSearchParams) return body;
  if (typeof body === 'string') return new URLSearchParams(body);
  return undefined;
}

/** Polls `check` until it returns true, or throws after `timeoutMs` naming `what`. */
export async function waitUntil(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

/** The proxy path of a connection. */
/** An integration on the demo provider whose API is a test server (`baseUrl`), for `extraIntegrations`. */
export const demoApiIntegration = (id: string, name: string, baseUrl: string) => ({
  id,
  name,
  provider: 'demo',
  scopes: ['openid', 'offline_access', 'items:read'],
  api: { baseUrl },
});

export const proxyPath = (connectionId: string, rest = 'items') =>
  `/api/v1/connections/${connectionId}/proxy/${rest}`;

/**
 * Fires `n` concurrent GETs of `path` spread round-robin over `services` as `userId`; resolves with
 * every status and body once all have answered.
 */
export async function burst(
  services: readonly TestService[],
  userId: string,
  path: string,
  n: number,
): Promise<Array<{ status: number; body: string; instance: number }>> {
  const bearer = `Bearer ${await services[0]!.token(userId)}`;
  return Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const instance = i % services.length;
      const r = await fetch(`${services[instance]!.url}${path}`, { headers: { authorization: bearer } });
      return { status: r.status, body: await r.text(), instance };
    }),
  );
}

/**
 * A request with the target sent exactly as given (fetch and URL normalise `..`, `%2e%2e` and
 * backslashes away before anything is sent; a proxy must be tested with what an attacker sends).
 */
export function rawRequest(
  baseUrl: string,
  target: string,
  headers: Record<string, string> = {},
  method = 'GET',
  body?: string,
): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  const { hostname, port } = new URL(baseUrl);
  const sent =
    body === undefined ? headers : { ...headers, 'content-length': String(Buffer.byteLength(body)) };
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: hostname, port: Number(port), path: target, method, headers: sent },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Server-sent events read from `GET /api/v1/events` with fetch and a stream reader. */
export interface EventStream {
  readonly events: Array<{ id: string | undefined; event: string; data: string }>;
  close(): void;
}

/** Opens the SSE stream for `userId` and keeps parsing events into `events` until closed. */
export async function openEventStream(svc: TestService, userId: string): Promise<EventStream> {
  const controller = new AbortController();
  const r = await svc.api(userId, '/api/v1/events', { signal: controller.signal });
  if (r.status !== 200 || r.body === null) throw new Error(`GET /api/v1/events: HTTP ${r.status}`);
  if (!(r.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
    throw new Error(`GET /api/v1/events: content-type ${r.headers.get('content-type')}`);
  }
  const events: EventStream['events'] = [];
  const reader = r.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  void (async () => {
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        buffer += decoder.decode(value, { stream: true });
        for (let end = buffer.indexOf('\n\n'); end !== -1; end = buffer.indexOf('\n\n')) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let id: string | undefined;
          let event = 'message';
          const data: string[] = [];
          for (const line of block.split('\n')) {
            if (line.startsWith('id: ')) id = line.slice(4);
            else if (line.startsWith('event: ')) event = line.slice(7);
            else if (line.startsWith('data: ')) data.push(line.slice(6));
          }
          if (data.length > 0) events.push({ id, event, data: data.join('\n') });
        }
      }
    } catch {
      // Aborted by close().
    }
  })();
  return { events, close: () => controller.abort() };
}
