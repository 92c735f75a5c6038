import { createServer } from 'node:net';
import { startDemoApi } from './demo-api.js';
import { demoClientSecret } from './demo-config.js';
import { startMcpServer } from './mcp-server.js';
import { startOidcProvider } from './oidc-provider.js';

export interface DemoPeersHandle {
  issuer: string;
  apiUrl: string;
  /** The demo MCP server's endpoint (its own authorization server beside it). */
  mcpUrl: string;
  close(): Promise<void>;
}

/** Access tokens of the demo MCP server live this long: short, so refreshes show up in a demo. */
const DEMO_MCP_ACCESS_TOKEN_TTL = 300;

/** The preferred port when free, else an ephemeral one (both on 127.0.0.1). */
async function pickPort(preferred: number): Promise<number> {
  const tryListen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      const srv = createServer();
      srv.once('error', reject);
      srv.listen(port, '127.0.0.1', () => {
        const chosen = (srv.address() as { port: number }).port;
        srv.close(() => resolve(chosen));
      });
    });
  return tryListen(preferred).catch(() => tryListen(0));
}

/** The scope of the demo API's resource. */
export const demoApiScope = 'items:read';

/**
 * Starts the bundled demo peers on loopback: an OIDC provider (panva's oidc-provider, with its
 * own login and consent pages) that knows this service as a client, and a small API that
 * accepts the provider's JWT access tokens, which demo mode wires as the "Demo Items"
 * integration; and an OAuth-protected MCP server with its own authorization server (dynamic
 * registration, resource indicators), wired as the "Demo MCP tools" MCP integration.
 */
export async function startDemoPeers(options: {
  publicUrl: string;
  preferredPort: number;
}): Promise<DemoPeersHandle> {
  const apiPort = await pickPort(options.preferredPort + 1);
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  const provider = await startOidcProvider({
    port: await pickPort(options.preferredPort),
    clients: [
      {
        client_id: 'nunq-demo',
        client_secret: demoClientSecret,
        redirect_uris: [`${options.publicUrl}/oauth/callback`],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    accessTokenTtlSeconds: 300,
    resource: { url: `${apiUrl}/`, scopes: [demoApiScope] },
  });
  const started: Array<{ close(): Promise<void> }> = [provider];
  const closeAll = async () => {
    await Promise.all(started.splice(0).map((peer) => peer.close()));
  };
  try {
    const api = await startDemoApi({ issuer: provider.issuer, audience: `${apiUrl}/`, port: apiPort });
    started.push(api);
    const mcp = await startMcpServer({
      port: await pickPort(options.preferredPort + 2),
      authServerPort: await pickPort(options.preferredPort + 3),
      accessTokenTtlSeconds: DEMO_MCP_ACCESS_TOKEN_TTL,
    });
    started.push(mcp);
    return { issuer: provider.issuer, apiUrl: api.url, mcpUrl: mcp.url, close: closeAll };
  } catch (error) {
    await closeAll();
    throw error;
  }
}
