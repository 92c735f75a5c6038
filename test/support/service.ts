import { randomInt } from 'node:crypto';
import { createServer } from 'node:net';
import { Writable } from 'node:stream';
import { type Config, validateConfig } from '../../src/config/index.js';
import { generateKey } from '../../src/crypto/index.js';
import { mintToken } from '../../src/identity/jwt.js';
import { createLogger } from '../../src/observability/logger.js';
import { createService, type Service, type ServiceOptions } from '../../src/service/service.js';
import type { TestDatabase } from './databases.js';

/**
 * A free TCP port on 127.0.0.1 (the service needs its public URL before it listens), picked at
 * random below the kernel's ephemeral range (32768+), so the many outgoing connections the suite
 * makes cannot take it between this check and the listen, and ports are rarely reused in a run.
 */
export async function freePort(): Promise<number> {
  const tryPort = (port: number) =>
    new Promise<boolean>((resolve) => {
      const srv = createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = 20_000 + randomInt(12_000);
    if (await tryPort(port)) return port;
  }
  throw new Error('no free port found');
}

export const testJwtSecret = 'test-jwt-secret-of-at-least-32-characters!';

export interface TestServiceOptions {
  database: TestDatabase;
  providers?: unknown[];
  integrations?: unknown[];
  mcpServers?: unknown[];
  webhooks?: unknown[];
  authMode?: 'jwt' | 'dev';
  admins?: string[];
  /** Encryption keys; default: one fresh key `k1`. */
  encryption?: { activeKey: string; keys: Array<{ id: string; key: string }> };
  serviceOptions?: ServiceOptions;
  /** Listen on this port (default: a free one). */
  port?: number;
  /** The `metrics` config section (a scrape token). */
  metrics?: { token?: string };
  /** Extra `server` settings (timeouts, body limit). */
  server?: Record<string, unknown>;
  /** The `outbound` section (default: allow loopback, `127.0.0.0/8`). */
  outbound?: { allow: string[]; timeoutMs?: number };
  /** The `mcp` section (e.g. `clientMetadataUrl`). */
  mcp?: { clientMetadataUrl?: string };
  /** The `rateLimits` section (default: the config's defaults). */
  rateLimits?: Record<string, unknown>;
}

export interface TestService {
  url: string;
  service: Service;
  config: Config;
  /** Every log line the service wrote (JSON strings), for the secrets scan. */
  logs: string[];
  /** A bearer JWT for `userId` signed with the test secret. */
  token(userId: string, role?: 'admin'): Promise<string>;
  /** fetch against the service with a bearer token for `userId`. */
  api(userId: string, path: string, init?: RequestInit): Promise<Response>;
  close(): Promise<void>;
}

/** Starts a real service instance on 127.0.0.1 against the given test database. */
export async function startTestService(o: TestServiceOptions): Promise<TestService> {
  const port = o.port ?? (await freePort());
  const config = validateConfig({
    server: { port, host: '127.0.0.1', publicUrl: `http://127.0.0.1:${port}`, ...(o.server ?? {}) },
    database: { url: o.database.url },
    encryption: o.encryption ?? { activeKey: 'k1', keys: [{ id: 'k1', key: generateKey() }] },
    auth: { mode: o.authMode ?? 'jwt', jwt: { secret: testJwtSecret }, admins: o.admins ?? [] },
    outbound: o.outbound ?? { allow: ['127.0.0.0/8'] },
    webhooks: o.webhooks ?? [],
    providers: o.providers ?? [],
    integrations: o.integrations ?? [],
    mcpServers: o.mcpServers ?? [],
    ...(o.metrics === undefined ? {} : { metrics: o.metrics }),
    ...(o.mcp === undefined ? {} : { mcp: o.mcp }),
    ...(o.rateLimits === undefined ? {} : { rateLimits: o.rateLimits }),
  });
  const logs: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      logs.push(
        ...String(chunk)
          .split('\n')
          .filter((l) => l.length > 0),
      );
      cb();
    },
  });
  const service = await createService(config, {
    logger: createLogger({ level: 'debug', destination }),
    ...(o.serviceOptions ?? {}),
  });
  await service.listen();
  const url = `http://127.0.0.1:${port}`;
  const token = (userId: string, role?: 'admin') =>
    mintToken(testJwtSecret, { sub: userId, ...(role ? { role } : {}) }, { expiresIn: '1h' });
  return {
    url,
    service,
    config,
    logs,
    token,
    async api(userId, path, init = {}) {
      const headers = new Headers(init.headers);
      headers.set('authorization', `Bearer ${await token(userId)}`);
      return fetch(`${url}${path}`, { ...init, headers });
    },
    close: () => service.close(),
  };
}
