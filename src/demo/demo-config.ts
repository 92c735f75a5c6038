import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Config, portFromEnv, validateConfig } from '../config/index.js';
import { generateKey } from '../crypto/index.js';

/** Where demo mode keeps its database and generated secrets. */
export const demoDirName = '.nunq';

interface DemoSecrets {
  keyId: string;
  key: string;
  jwtSecret: string;
}

/**
 * Loads the demo secrets from `./.nunq/demo-secrets.json`, creating them (mode 0600) on first
 * use. Returns whether they were just created so the caller can warn loudly.
 */
export function loadDemoSecrets(cwd: string): { secrets: DemoSecrets; file: string; created: boolean } {
  const dir = join(cwd, demoDirName);
  const file = join(dir, 'demo-secrets.json');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (existsSync(file)) {
    if ((statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600);
    return { secrets: JSON.parse(readFileSync(file, 'utf8')) as DemoSecrets, file, created: false };
  }
  const secrets: DemoSecrets = {
    keyId: 'demo',
    key: generateKey(),
    jwtSecret: randomBytes(32).toString('base64url'),
  };
  writeFileSync(file, `${JSON.stringify(secrets, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  return { secrets, file, created: true };
}

/**
 * The demo secrets `serve` made in `cwd`, or undefined when it has not run there. Creates
 * nothing: only `serve` enters demo mode.
 */
export function findDemoSecrets(cwd: string): { secrets: DemoSecrets; file: string } | undefined {
  const file = join(cwd, demoDirName, 'demo-secrets.json');
  if (!existsSync(file)) return undefined;
  return { secrets: JSON.parse(readFileSync(file, 'utf8')) as DemoSecrets, file };
}

/** Demo mode's port: `$PORT` when set (checked like a config file's), else 3000. */
export function demoPort(env: Record<string, string | undefined>): number {
  return portFromEnv(env) ?? 3000;
}

export interface DemoPeers {
  /** Issuer of the bundled OIDC provider, and the base URL of the demo API behind it. */
  issuer: string;
  apiUrl: string;
  /** The bundled MCP server's endpoint (it names its own authorization server). */
  mcpUrl?: string;
}

/**
 * The configuration demo mode runs with: SQLite and secrets under `./.nunq/`, dev sign-in, and
 * (when the bundled peers run) the demo integration and the demo MCP server wired to them.
 * Validated like a config file.
 */
export function demoConfig(cwd: string, env: Record<string, string | undefined>, peers?: DemoPeers): Config {
  const port = demoPort(env);
  const { secrets } = loadDemoSecrets(cwd);
  return validateConfig({
    server: { port, publicUrl: `http://localhost:${port}` },
    database: { url: `sqlite:${join(cwd, demoDirName, 'nunq.db')}` },
    encryption: { activeKey: secrets.keyId, keys: [{ id: secrets.keyId, key: secrets.key }] },
    auth: { mode: 'dev', jwt: { secret: secrets.jwtSecret }, admins: ['admin'] },
    outbound: { allow: ['127.0.0.0/8', '::1/128'] },
    providers:
      peers === undefined
        ? []
        : [
            {
              id: 'demo',
              type: 'oidc',
              issuer: peers.issuer,
              clientId: 'nunq-demo',
              clientSecret: demoClientSecret,
            },
          ],
    integrations:
      peers === undefined
        ? []
        : [
            {
              id: 'demo-items',
              name: 'Demo Items',
              description: 'A local demo API behind the bundled OAuth provider: sign in there with any name.',
              provider: 'demo',
              scopes: ['openid', 'profile', 'email', 'offline_access', 'items:read'],
              api: { baseUrl: peers.apiUrl },
            },
          ],
    mcpServers:
      peers?.mcpUrl === undefined
        ? []
        : [
            {
              id: 'demo-tools',
              name: 'Demo MCP tools',
              description:
                'A local MCP server with its own OAuth authorization server: sign in there with any name.',
              url: peers.mcpUrl,
            },
          ],
  });
}

/** The demo client's secret: the demo provider only runs on loopback, so a fixed value is fine. */
export const demoClientSecret = 'nunq-demo-client-secret-for-loopback-only';

export const demoWarning = `
  ┌────────────────────────────────────────────────────────────────────────┐
  │  DEMO MODE: no config file found (--config, $NUNQ_CONFIG,               │
  │  ./nunq-connect.yaml). Using SQLite and an encryption key GENERATED     │
  │  into ./.nunq/ — fine for a demo, NOT for real tokens. Anyone may sign  │
  │  in at /dev/login. See docs/configuration.md to run it for real.        │
  └────────────────────────────────────────────────────────────────────────┘
`;
