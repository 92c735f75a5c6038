import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { startDemo } from '../../src/cli/serve.js';
import { createLogger } from '../../src/observability/logger.js';
import { createService, type Service } from '../../src/service/service.js';
import { freePort } from '../support/service.js';
import { UserAgent } from '../support/user-agent.js';

/** The README's five-minute tour, step by step, against demo mode as `npm start` runs it. */
describe('demo mode (the README tour)', () => {
  let cwd: string;
  let env: Record<string, string>;
  let service: Service;
  let stopPeers: () => Promise<void>;
  let base: string;

  beforeAll(async () => {
    cwd = mkdtempSync(join(tmpdir(), 'nunq-demo-'));
    const port = await freePort();
    env = { PORT: String(port) };
    const demo = await startDemo(cwd, env);
    stopPeers = demo.stop;
    service = await createService(demo.config, { logger: createLogger({ level: 'silent' }), demo: true });
    await service.listen();
    base = demo.config.server.publicUrl;
  });

  afterAll(async () => {
    await service?.close();
    await stopPeers?.();
    rmSync(cwd, { recursive: true, force: true });
  });

  it('keeps its generated secrets in ./.nunq with mode 0600 and its database there too', () => {
    expect(base).toMatch(/^http:\/\/localhost:\d+$/);
    expect(statSync(join(cwd, '.nunq', 'demo-secrets.json')).mode & 0o777).toBe(0o600);
    expect(statSync(join(cwd, '.nunq', 'nunq.db')).isFile()).toBe(true);
    expect(service.ctx.config.auth.mode).toBe('dev');
  });

  it('walks the tour: /dev/login, Connect, the demo provider, Connected as…, the proxy with a minted token', async () => {
    const ua = new UserAgent();
    // 1. / sends an anonymous visitor to /dev/login.
    const home = await ua.get(`${base}/`);
    expect(home.status).toBe(302);
    expect(home.headers.get('location')).toBe('/dev/login?return_to=%2F');
    const login = await ua.post(`${base}/dev/login`, { name: 'alice', return_to: '/' });
    expect(login.status).toBe(303);
    // 2. The Integrations page lists Demo Items, not connected.
    const page = await ua.get(`${base}/`);
    expect(page.body).toContain('Demo Items');
    expect(page.body).toContain('Not connected');
    // 3. Connect → the demo provider's sign-in and consent → back.
    const callback = await ua.signInAtOidcProvider(await ua.startConnect(base, 'demo-items'), 'alice');
    const done = await ua.get(callback.href);
    const back = new URL(done.headers.get('location')!, base);
    expect(back.searchParams.get('outcome')).toBe('connected');
    // 4. "Connected as Alice".
    expect((await ua.get(`${base}/?outcome=connected`)).body).toContain('Connected as Alice');
    // 5. The proxy, with a token from `nunq-connect token --user alice`.
    let out = '';
    const code = await main(['token', '--user', 'alice'], {
      out: (t) => {
        out += t;
      },
      err: () => {},
      env,
      cwd,
      isTTY: false,
    });
    expect(code).toBe(0);
    const token = out.trim();
    const list = await (
      await fetch(`${base}/api/v1/connections`, { headers: { authorization: `Bearer ${token}` } })
    ).json();
    expect(list).toHaveLength(1);
    const items = await fetch(`${base}/api/v1/connections/${list[0].id}/proxy/items`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(items.status).toBe(200);
    expect((await items.json()).items.length).toBeGreaterThan(0);

    // 6. The demo MCP server: Connect it, then scripts/mcp-call.ts calls a tool through the
    //    gateway holding only that token, as the platform's agent does.
    expect(page.body).toContain('Demo MCP tools');
    const mcpCallback = await ua.signInAtOidcProvider(await ua.startConnect(base, 'demo-tools'), 'alice');
    const mcpDone = await ua.get(mcpCallback.href);
    expect(new URL(mcpDone.headers.get('location')!, base).searchParams.get('outcome')).toBe('connected');
    const script = fileURLToPath(new URL('../../scripts/mcp-call.ts', import.meta.url));
    // Asynchronously: the service runs in this process, so a blocking spawn would starve it.
    const call = await promisify(execFile)(
      process.execPath,
      [
        '--import',
        'tsx',
        script,
        '--url',
        base,
        '--token',
        token,
        '--server',
        'demo-tools',
        '--tool',
        'echo',
        '--args',
        '{"text":"hello from the tour"}',
      ],
      { encoding: 'utf8', timeout: 30_000 },
    );
    expect(call.stdout).toContain('hello from the tour');
    expect(call.stdout).not.toContain(token);
  });
});
