/**
 * The OAuth-protected MCP test server (src/demo/mcp-server.ts) for tests: start variants that are
 * closed after each test, and an MCP SDK client that authorizes itself against one, consenting
 * automatically through a scripted browser at the server's own sign-in pages.
 */
import { randomBytes } from 'node:crypto';
import {
  auth,
  type OAuthClientProvider,
  type OAuthDiscoveryState,
} from '@modelcontextprotocol/sdk/client/auth.js';
import { Client, type ClientOptions } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type {
  OAuthClientInformationMixed,
  OAuthClientMetadata,
  OAuthTokens,
} from '@modelcontextprotocol/sdk/shared/auth.js';
import { afterEach } from 'vitest';
import {
  type RunningMcpServer,
  type StartMcpServerOptions,
  startMcpServer,
} from '../../src/demo/mcp-server.js';
import { UserAgent } from './user-agent.js';

export type { RunningMcpServer, StartMcpServerOptions };

/** Where the test clients say they are redirected to: never requested (the agent stops there). */
export const testRedirectUri = 'http://127.0.0.1:9/oauth/callback';

const started: RunningMcpServer[] = [];
const connected: ConnectedMcpClient[] = [];
afterEach(async () => {
  await Promise.all(connected.splice(0).map((client) => client.close()));
  await Promise.all(started.splice(0).map((peer) => peer.close()));
});

/** Starts an MCP test server variant on loopback; it is closed after the current test. */
export async function startMcpPeer(options: StartMcpServerOptions = {}): Promise<RunningMcpServer> {
  const peer = await startMcpServer(options);
  started.push(peer);
  return peer;
}

/**
 * An MCP SDK OAuth client provider kept in memory that "opens" the authorization URL in a
 * scripted browser signed in as `login` and consents there; `takeAuthorizationCode` hands the
 * code (its `state` checked) to the next `auth()` call.
 */
export class TestOAuthClient implements OAuthClientProvider {
  readonly agent: UserAgent;
  readonly login: string;
  readonly redirectUrl = testRedirectUri;
  /** Every authorization URL the SDK asked to open, in order. */
  readonly authorizationUrls: URL[] = [];
  clientMetadataUrl?: string;
  #client?: OAuthClientInformationMixed;
  #tokens?: OAuthTokens;
  #verifier?: string;
  #discovery?: OAuthDiscoveryState;
  #state?: string;
  #callback?: Promise<URL>;

  constructor(options: { login?: string; agent?: UserAgent; client?: OAuthClientInformationMixed } = {}) {
    this.login = options.login ?? 'alice';
    this.agent = options.agent ?? new UserAgent();
    this.#client = options.client;
  }

  get clientMetadata(): OAuthClientMetadata {
    return {
      client_name: 'MCP peer test client',
      redirect_uris: [testRedirectUri],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }

  state(): string {
    this.#state = randomBytes(16).toString('base64url');
    return this.#state;
  }
  clientInformation() {
    return this.#client;
  }
  saveClientInformation(info: OAuthClientInformationMixed): void {
    this.#client = info;
  }
  tokens() {
    return this.#tokens;
  }
  saveTokens(tokens: OAuthTokens): void {
    this.#tokens = tokens;
  }
  saveCodeVerifier(verifier: string): void {
    this.#verifier = verifier;
  }
  codeVerifier(): string {
    if (this.#verifier === undefined) throw new Error('no code verifier saved');
    return this.#verifier;
  }
  saveDiscoveryState(state: OAuthDiscoveryState): void {
    this.#discovery = state;
  }
  discoveryState() {
    return this.#discovery;
  }
  redirectToAuthorization(url: URL): void {
    this.authorizationUrls.push(url);
    this.#callback = this.agent.signInAtOidcProvider(url, this.login);
    this.#callback.catch(() => undefined); // surfaced by takeAuthorizationCode
  }

  /** The code of the last authorization, once the browser reached the redirect URI. */
  async takeAuthorizationCode(): Promise<string> {
    if (this.#callback === undefined) throw new Error('no authorization was started');
    const callback = await this.#callback;
    this.#callback = undefined;
    const error = callback.searchParams.get('error');
    if (error !== null) throw new Error(`authorization failed: ${error}`);
    if (callback.searchParams.get('state') !== this.#state) throw new Error('state mismatch');
    const code = callback.searchParams.get('code');
    if (code === null) throw new Error('no code in the callback');
    return code;
  }
}

/** Runs the MCP SDK's `auth()` to the end: discovery, registration, sign-in and consent, tokens. */
export async function authorizeMcpClient(serverUrl: string, oauth: TestOAuthClient, scope?: string) {
  const first = await auth(oauth, { serverUrl, ...(scope === undefined ? {} : { scope }) });
  if (first === 'AUTHORIZED') return;
  const authorizationCode = await oauth.takeAuthorizationCode();
  const second = await auth(oauth, {
    serverUrl,
    authorizationCode,
    ...(scope === undefined ? {} : { scope }),
  });
  if (second !== 'AUTHORIZED') throw new Error('the authorization did not complete');
}

export interface ConnectedMcpClient {
  client: Client;
  transport: StreamableHTTPClientTransport;
  oauth: TestOAuthClient;
  close(): Promise<void>;
}

/**
 * An MCP SDK client connected to `serverUrl` over Streamable HTTP after authorizing `oauth` (a
 * new one signed in as `alice` unless given); the SDK transport refreshes on its own afterwards.
 * Closed after the current test.
 */
export async function connectMcpClient(
  serverUrl: string,
  options: { oauth?: TestOAuthClient; scope?: string; clientOptions?: ClientOptions } = {},
): Promise<ConnectedMcpClient> {
  const oauth = options.oauth ?? new TestOAuthClient();
  await authorizeMcpClient(serverUrl, oauth, options.scope);
  const transport = new StreamableHTTPClientTransport(new URL(serverUrl), { authProvider: oauth });
  const client = new Client({ name: 'mcp-peer-test', version: '1.0.0' }, options.clientOptions);
  await client.connect(transport);
  let closed = false;
  const connection: ConnectedMcpClient = {
    client,
    transport,
    oauth,
    async close() {
      if (closed) return;
      closed = true;
      await transport.terminateSession().catch(() => undefined);
      await client.close();
    },
  };
  connected.push(connection);
  return connection;
}
