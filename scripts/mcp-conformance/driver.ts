/**
 * The `--command` of the MCP conformance suite's client scenarios (see docs/conformance-notes.md):
 * the service as the MCP client under test. Run as
 * `node --import tsx scripts/mcp-conformance/driver.ts <serverUrl>`; the suite appends the
 * scenario's MCP server URL and sets `MCP_CONFORMANCE_SCENARIO` and, for some scenarios,
 * `MCP_CONFORMANCE_CONTEXT` (JSON: pre-registered `client_id` / `client_secret`).
 *
 * It writes a config naming that server, starts the service from the sources, signs a person in
 * (a JWT hand-off, cookie jar, no browser: the suite's authorization server approves without a
 * page), and has an MCP SDK client holding only the nunq JWT list and call the server's tool
 * through `/mcp/:integrationId`. Each time the gateway asks the user to act (-32042, or a
 * URL-mode elicitation request) the person opens the URL, presses the confirmation's button and
 * follows the redirects through the authorization server back to the service; then the request
 * is retried. Exit 0 only when `tools/list` shows `test-tool` and `tools/call` answers `test`.
 *
 * The limit on authorization attempts is the service's to keep (at most 3 per call chain): the
 * driver follows up to 5 URLs for one request, so a service that loops shows up in the suite's
 * `scope-retry-limit` count instead of being hidden by the driver.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  type CallToolResult,
  ElicitRequestSchema,
  ErrorCode,
  McpError,
} from '@modelcontextprotocol/sdk/types.js';
import { stringify } from 'yaml';
import { generateKey } from '../../src/crypto/index.js';
import { mintToken } from '../../src/identity/jwt.js';
import { freePort } from '../../test/support/service.js';
import { UserAgent, type UserAgentResponse } from '../../test/support/user-agent.js';

/** The suite's fixed Client ID Metadata Document URL (`CIMD_CLIENT_METADATA_URL`); not in its context. */
export const conformanceCimdUrl = 'https://conformance-test.local/client-metadata.json';
/** The integration id the scenario's server gets in the generated config. */
export const conformanceIntegration = 'conformance';
const userId = 'conformance-user';
/** URLs the person follows for one request before the driver gives up (more than the service's 3). */
const maxUrlsPerRequest = 5;
const root = fileURLToPath(new URL('../..', import.meta.url));

/** What the suite passes in `MCP_CONFORMANCE_CONTEXT` for the browser-flow auth scenarios. */
interface ScenarioContext {
  client_id?: string;
  client_secret?: string;
}

/** The config the service runs with for one scenario: the scenario's server as the only MCP server. */
export function conformanceConfig(o: {
  port: number;
  databaseFile: string;
  jwtSecret: string;
  serverUrl: string;
  context: ScenarioContext;
}): Record<string, unknown> {
  return {
    server: { port: o.port, host: '127.0.0.1', publicUrl: `http://127.0.0.1:${o.port}` },
    database: { url: `sqlite:${o.databaseFile}` },
    encryption: { activeKey: 'k1', keys: [{ id: 'k1', key: generateKey() }] },
    auth: { mode: 'jwt', jwt: { secret: o.jwtSecret } },
    // The suite's servers listen on 127.0.0.1 (loopback-shim.mjs) under the name `localhost`.
    outbound: { allow: ['127.0.0.0/8'] },
    mcpServers: [
      {
        id: conformanceIntegration,
        name: 'Conformance server',
        url: o.serverUrl,
        ...(o.context.client_id === undefined ? {} : { clientId: o.context.client_id }),
        ...(o.context.client_secret === undefined ? {} : { clientSecret: o.context.client_secret }),
      },
    ],
    mcp: { clientMetadataUrl: conformanceCimdUrl },
  };
}

/** A service process started from the sources (the bin without a build). */
class ServiceProcess {
  readonly url: string;
  readonly #child: ChildProcess;
  #exit: { code: number | null; signal: string | null } | undefined;
  /** The end of its output, to say why it did not start. */
  #tail = '';
  readonly #exited: Promise<void>;

  constructor(configFile: string, port: number, cwd: string) {
    this.url = `http://127.0.0.1:${port}`;
    const tsx = pathToFileURL(join(root, 'node_modules/tsx/dist/loader.mjs')).href;
    const env: Record<string, string | undefined> = { ...process.env, LOG_FORMAT: 'json' };
    delete env.NUNQ_CONFIG;
    // The semi-space flag is what the bin relaunches `serve` with; given here, it does not relaunch.
    const args = ['--max-semi-space-size=32', '--import', tsx, join(root, 'test/support/cli-entry.ts')];
    this.#child = spawn(process.execPath, [...args, 'serve', '--config', configFile], {
      cwd,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // The service's own log lines (never a token), for the suite's stderr.txt.
    const keep = (d: Buffer) => {
      process.stderr.write(d);
      this.#tail = (this.#tail + String(d)).slice(-1500);
    };
    this.#child.stdout!.on('data', keep);
    this.#child.stderr!.on('data', keep);
    this.#exited = new Promise((done) =>
      this.#child.once('close', (code, signal) => {
        this.#exit = { code, signal };
        done();
      }),
    );
  }

  async ready(timeoutMs = 60_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      if (this.#exit !== undefined) {
        throw new Error(
          `the service exited before serving (code ${this.#exit.code}, signal ${this.#exit.signal}): ${this.#tail.trim()}`,
        );
      }
      const ok = await fetch(`${this.url}/healthz`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) return;
      if (Date.now() > until) throw new Error(`the service did not answer /healthz within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** SIGTERM, then SIGKILL after 5 s. */
  async stop(): Promise<void> {
    if (this.#exit !== undefined) return;
    this.#child.kill('SIGTERM');
    const killer = setTimeout(() => this.#child.kill('SIGKILL'), 5000);
    await this.#exited;
    clearTimeout(killer);
  }

  /** For an abrupt end of the driver (the suite's timeout): no waiting. */
  killNow(): void {
    if (this.#exit === undefined) this.#child.kill('SIGKILL');
  }
}

function log(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** A URL without its query (which may carry a code or state): for messages. */
function shown(url: string | URL): string {
  const u = new URL(url);
  return `${u.origin}${u.pathname}`;
}

/** The visible text of a page, shortened: for messages. */
function pageText(page: UserAgentResponse): string {
  return page.body
    .replace(/<style[\s\S]*?<\/style>|<script[\s\S]*?<\/script>/gi, '')
    .replace(/<[^>]+>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 400);
}

/**
 * A person acting on a URL the gateway handed out: opens it on the service, presses the
 * confirmation's button, goes through the authorization server (which approves at once) and
 * back, answers an account-replacement question with "use the new sign-in", and ends on the
 * `return_to` page. Throws unless the outcome is `connected` or `reconnected`.
 */
export async function actOnUrl(ua: UserAgent, serviceUrl: string, url: string): Promise<string> {
  const service = new URL(serviceUrl).origin;
  if (new URL(url).origin !== service) {
    throw new Error(`the URL to act on is not on the service's origin: ${shown(url)}`);
  }
  const onService = (u: URL) => u.origin === service;
  const opened = await ua.follow(url, { stopAt: (u) => !onService(u) });
  if (opened.stoppedAt !== undefined) {
    throw new Error(
      `opening ${shown(url)} went to ${shown(opened.stoppedAt)} without a confirmation page (contract §4)`,
    );
  }
  if (opened.response.status !== 200) {
    throw new Error(
      `opening ${shown(url)} ended at HTTP ${opened.response.status}: ${pageText(opened.response)}`,
    );
  }
  const pressable = (u: URL) => onService(u) && u.pathname !== '/logout';
  let result = await ua.submit(opened.response, pressable);
  for (let question = 0; question < 3; question++) {
    const at = new URL(result.response.url);
    if (!onService(at) || result.response.status !== 200) break;
    if (/^\/connections\/[^/]+\/confirm\//.test(at.pathname)) {
      result = await ua.submit(result.response, pressable, { decision: 'replace' });
    } else if (at.pathname.startsWith('/oauth/confirm/')) {
      result = await ua.submit(result.response, pressable, { decision: 'connect' });
    } else break;
  }
  const end = new URL(result.response.url);
  const outcome = end.searchParams.get('outcome');
  if (outcome === 'connected' || outcome === 'reconnected') return outcome;
  throw new Error(
    `acting on ${shown(url)} ended at ${shown(end)} (HTTP ${result.response.status}, outcome ${outcome ?? 'none'}` +
      `${end.searchParams.get('reason') ? `, reason ${end.searchParams.get('reason')}` : ''}): ${pageText(result.response)}`,
  );
}

/** The URLs of a -32042 error (`data.elicitations[].url`), or undefined for any other error. */
function urlsToActOn(error: unknown): string[] | undefined {
  if (!(error instanceof McpError) || error.code !== ErrorCode.UrlElicitationRequired) return undefined;
  const data = error.data as { elicitations?: Array<{ url?: unknown }> } | undefined;
  const urls = (data?.elicitations ?? []).map((e) => e.url).filter((u): u is string => typeof u === 'string');
  if (urls.length === 0) throw new Error(`-32042 without data.elicitations[].url: ${error.message}`);
  return urls;
}

/**
 * The person behind the agent: acts on the URLs the gateway hands out, at most
 * `maxUrlsPerRequest` for one request.
 */
class Person {
  #urlsThisRequest = 0;

  constructor(
    private readonly ua: UserAgent,
    private readonly serviceUrl: string,
  ) {}

  /** A new request of the agent: the count starts again. */
  newRequest(): void {
    this.#urlsThisRequest = 0;
  }

  async act(url: string): Promise<void> {
    this.#urlsThisRequest += 1;
    if (this.#urlsThisRequest > maxUrlsPerRequest) {
      throw new Error(
        `the gateway asked for a ${this.#urlsThisRequest}th authorization for one request; giving up`,
      );
    }
    const outcome = await actOnUrl(this.ua, this.serviceUrl, url);
    log(`  acted on ${shown(url)}: ${outcome}`);
  }
}

/**
 * The scenario's calls: an MCP SDK client holding only the JWT lists and calls `test-tool`
 * through `/mcp/:integrationId`, acting on every URL the gateway asks the person to open.
 */
export async function callThroughGateway({ serviceUrl, ua, jwt }: DriverSession): Promise<void> {
  const person = new Person(ua, serviceUrl);
  const client = new Client(
    { name: 'nunq-conformance-driver', version: '1.0.0' },
    { capabilities: { elicitation: { url: {} } } },
  );
  // A gateway may also ask with a URL-mode elicitation request instead of the -32042 error.
  client.setRequestHandler(ElicitRequestSchema, async (request) => {
    if (request.params.mode !== 'url') return { action: 'decline' };
    await person.act(request.params.url);
    return { action: 'accept' };
  });
  const endpoint = new URL(`${serviceUrl}/mcp/${conformanceIntegration}`);
  const transport = new StreamableHTTPClientTransport(endpoint, {
    requestInit: { headers: { authorization: `Bearer ${jwt}` } },
  });
  await client.connect(transport);
  log('initialize: ok');
  try {
    await listAndCall(client, person);
  } finally {
    await client.close();
  }
}

/** `tools/list` must show `test-tool`; `tools/call test-tool` must answer `test`. */
async function listAndCall(client: Client, person: Person): Promise<void> {
  // Retries `request` after acting on each URL the gateway answers -32042 with.
  const withUserActions = async <T>(what: string, request: () => Promise<T>): Promise<T> => {
    person.newRequest();
    for (;;) {
      try {
        return await request();
      } catch (error) {
        const urls = urlsToActOn(error);
        if (urls === undefined) throw new Error(`${what}: ${error instanceof Error ? error.message : error}`);
        log(`${what}: -32042, ${urls.length} URL(s) to act on`);
        for (const url of urls) await person.act(url);
      }
    }
  };

  const listed = await withUserActions('tools/list', () => client.listTools());
  const names = listed.tools.map((t) => t.name);
  if (!names.includes('test-tool')) throw new Error(`tools/list: no test-tool in [${names.join(', ')}]`);
  log(`tools/list: ${names.join(', ')}`);

  const called = (await withUserActions('tools/call', () =>
    client.callTool({ name: 'test-tool', arguments: {} }),
  )) as CallToolResult;
  const text = called.content
    .map((c) => (c.type === 'text' ? c.text : `[${c.type}]`))
    .join(' ')
    .slice(0, 400);
  if (called.isError) throw new Error(`tools/call: error result: ${text}`);
  if (text !== 'test') throw new Error(`tools/call: expected "test", got "${text}"`);
  log('tools/call: test');
}

/** A running service with a signed-in person: what the steps of a scenario act with. */
export interface DriverSession {
  serviceUrl: string;
  /** The person's cookie agent, signed in. */
  ua: UserAgent;
  /** The nunq JWT of the same user: all the MCP client holds. */
  jwt: string;
}

/**
 * Runs one scenario: starts the service for `serverUrl`, signs a person in, runs `steps`
 * (default: `callThroughGateway`), stops the service. Throws saying what did not work.
 */
export async function drive(
  serverUrl: string,
  context: ScenarioContext,
  steps: (session: DriverSession) => Promise<void> = callThroughGateway,
): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'nunq-conformance-'));
  let service: ServiceProcess | undefined;
  const abort = (why?: string) => {
    if (why !== undefined) log(`FAIL: ${why}`);
    service?.killNow();
    rmSync(dir, { recursive: true, force: true });
    process.exit(1);
  };
  const onSignal = () => abort();
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  // The suite runs this through a shell and, on its timeout, kills only the shell: end before it
  // (its deadline comes in the environment from run.ts), and end with it when orphaned.
  const deadlineMs = Number(process.env.NUNQ_CONFORMANCE_DRIVER_DEADLINE_MS ?? 120_000);
  const deadline = setTimeout(() => abort(`the driver's ${deadlineMs} ms deadline passed`), deadlineMs);
  const parent = process.ppid;
  const orphaned = setInterval(() => {
    if (process.ppid !== parent) abort('the suite went away');
  }, 1000);
  try {
    const port = await freePort();
    const jwtSecret = randomBytes(32).toString('base64url');
    const configFile = join(dir, 'nunq-connect.yaml');
    const config = conformanceConfig({
      port,
      databaseFile: join(dir, 'nunq.db'),
      jwtSecret,
      serverUrl,
      context,
    });
    writeFileSync(configFile, stringify(config), { mode: 0o600 });
    service = new ServiceProcess(configFile, port, dir);
    await service.ready();
    log(`service up at ${service.url} with MCP server ${serverUrl} as "${conformanceIntegration}"`);

    const jwt = await mintToken(jwtSecret, { sub: userId }, { expiresIn: '1h' });
    const ua = new UserAgent();
    const signIn = await ua.follow(`${service.url}/session?token=${jwt}&return_to=/`, { maxHops: 1 });
    if (signIn.response.status !== 200) throw new Error(`sign-in hand-off: HTTP ${signIn.response.status}`);

    await steps({ serviceUrl: service.url, ua, jwt });
  } finally {
    clearTimeout(deadline);
    clearInterval(orphaned);
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    await service?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const serverUrl = process.argv.at(-1);
  if (process.argv.length < 3 || serverUrl === undefined || !/^https?:\/\//.test(serverUrl)) {
    process.stderr.write('usage: node --import tsx scripts/mcp-conformance/driver.ts <mcp server url>\n');
    process.exit(2);
  }
  const context = JSON.parse(process.env.MCP_CONFORMANCE_CONTEXT ?? '{}') as ScenarioContext;
  log(`scenario ${process.env.MCP_CONFORMANCE_SCENARIO ?? '(none)'}`);
  try {
    await drive(serverUrl, context);
    log('PASS: listed and called test-tool through the gateway');
  } catch (error) {
    log(`FAIL: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  }
}
