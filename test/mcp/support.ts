/**
 * Shared steps of the MCP interop and SSRF tests: Connect an MCP server through the service as a
 * person does, and talk to the MCP gateway as an agent holding only the nunq JWT.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { ClientCapabilities } from '@modelcontextprotocol/sdk/types.js';
import { expect } from 'vitest';
import type { TestService } from '../support/service.js';
import { signedInAgent, type UserAgent } from '../support/user-agent.js';

export interface Connected {
  /** The authorization request the service sent the browser to. */
  authorizationUrl: URL;
  connectionId: string;
  /** The browser, still signed in to the service and the authorization server. */
  ua: UserAgent;
}

/**
 * Connects `integrationId` for `userId` as a person does: the confirmation page's Connect button,
 * sign-in and consent at the MCP server's authorization server (oidc-provider), back through the
 * callback; expects the outcome `connected`.
 */
export async function connectMcpServer(
  svc: TestService,
  userId: string,
  integrationId: string,
): Promise<Connected> {
  const ua = await signedInAgent(svc, userId);
  const authorizationUrl = await ua.startConnect(svc.url, integrationId);
  const connectionId = await finishAtProvider(svc, ua, authorizationUrl, userId, 'connected');
  return { authorizationUrl, connectionId, ua };
}

/**
 * Signs in and consents at the authorization server, follows the callback, and returns the
 * connection id the service names in its redirect with `outcome`.
 */
export async function finishAtProvider(
  svc: TestService,
  ua: UserAgent,
  authorizationUrl: URL,
  login: string,
  outcome: 'connected' | 'reconnected',
): Promise<string> {
  const callback = await ua.signInAtOidcProvider(authorizationUrl, login);
  const done = await ua.get(callback.href);
  const back = new URL(done.headers.get('location') ?? '/', svc.url);
  expect(back.searchParams.get('error') ?? back.searchParams.get('outcome')).toBe(outcome);
  const connectionId = back.searchParams.get('connection') ?? '';
  expect(connectionId).toMatch(/^[0-9a-f-]{36}$/);
  return connectionId;
}

/**
 * Follows a Connect link the MCP gateway gave (`/connect/:id?elicitation=…`) in the browser: opens
 * the confirmation page, presses Connect, and returns the authorization server's URL it leads to.
 */
export async function followConnectLink(ua: UserAgent, link: string): Promise<URL> {
  const target = new URL(link);
  const page = await ua.get(target);
  expect(
    page.status,
    `${link}: ${page.body
      .replace(/<[^>]+>/g, ' ')
      .replace(/\s+/g, ' ')
      .slice(0, 300)}`,
  ).toBe(200);
  const { response, stoppedAt } = await ua.submit(
    page,
    (action) => action.pathname === target.pathname,
    {},
    {
      stopAt: () => true,
    },
  );
  expect(response.status).toBe(303);
  return stoppedAt ?? expect.fail('the Connect button led nowhere');
}

export interface GatewayAgent {
  client: Client;
  /** The nunq JWT the agent holds: the only credential it has. */
  jwt: string;
}

/** An MCP SDK client at the gateway's `/mcp/:integrationId`, holding only the nunq JWT of `userId`. */
export async function gatewayAgent(
  svc: TestService,
  userId: string,
  integrationId: string,
  capabilities: ClientCapabilities = {},
): Promise<GatewayAgent> {
  const jwt = await svc.token(userId);
  const client = new Client({ name: 'interop-agent', version: '1.0.0' }, { capabilities });
  const transport = new StreamableHTTPClientTransport(new URL(`${svc.url}/mcp/${integrationId}`), {
    requestInit: { headers: { authorization: `Bearer ${jwt}` } },
  });
  await client.connect(transport);
  return { client, jwt };
}

/** The text of a tool result's first content item. */
export function textOf(result: unknown): string {
  const content = (result as { content?: Array<{ type: string; text?: string }> }).content;
  return content?.[0]?.text ?? '';
}

/** How many rows of `table` belong to `integrationId`. */
export async function rowsFor(
  svc: TestService,
  table: 'connections' | 'pending_authorizations',
  integrationId: string,
): Promise<number> {
  const row = await svc.service.ctx.store.db
    .selectFrom(table)
    .select((eb) => eb.fn.countAll().as('n'))
    .where('integration_id', '=', integrationId)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}
