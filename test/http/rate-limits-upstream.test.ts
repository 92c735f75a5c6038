import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type McpUpstream, startMcpUpstream } from '../gateway/mcp-upstream.js';
import { type Lifecycle, proxyPath, startLifecycle } from '../support/lifecycle.js';
import type { TestService } from '../support/service.js';
import { type RecordingServer, startRecordingServer } from '../support/webhook-receiver.js';

// A refused proxy or gateway call never reaches the upstream, and the upstream's own RateLimit
// fields pass through the proxy untouched. The limits are in memory and never touch the
// database, so SQLite alone suffices.

const off = { enabled: false };
const proxyPerUser = 4;
const gatewayPerUser = 12;
const scopes = ['openid', 'offline_access', 'items:read'];

describe('rate limits in front of the upstream', () => {
  let lc: Lifecycle;
  let svc: TestService;
  let api: RecordingServer;
  let mcp: McpUpstream;
  let counted: string;
  const clients: Client[] = [];

  beforeAll(async () => {
    api = await startRecordingServer({
      answer: () => ({
        status: 200,
        headers: { 'content-type': 'application/json', 'ratelimit-limit': '50', 'ratelimit-remaining': '41' },
        body: '{"items":[]}',
      }),
    });
    lc = await startLifecycle({
      kind: 'sqlite',
      webhooks: false,
      extraIntegrations: [
        { id: 'counted', name: 'Counted', provider: 'demo', scopes, api: { baseUrl: api.url } },
        { id: 'tracker', name: 'Tracker', provider: 'demo', scopes, api: { baseUrl: 'http://127.0.0.1:9/' } },
      ],
      // Sign-in and Connect are not under test here: their limits are off.
      rateLimits: {
        signIn: off,
        connect: off,
        callback: off,
        api: off,
        pages: off,
        proxy: { windowSeconds: 60, perUser: proxyPerUser, perAddress: 1000 },
        gateway: { windowSeconds: 60, perUser: gatewayPerUser, perAddress: 1000 },
      },
    });
    mcp = await startMcpUpstream(lc.oidc.issuer);
    svc = await lc.startService({ background: false });
    counted = await lc.connect(svc, 'u-alice', 'alice', 'counted');
    await lc.connect(svc, 'u-alice', 'alice', 'tracker');
    await lc.connect(svc, 'u-bob', 'alice', 'tracker');
    // The tracker becomes an MCP server integration, as in the gateway's own tests.
    await svc.service.ctx.store.db
      .updateTable('integrations')
      .set({ kind: 'mcp', settings: JSON.stringify({ scopes, url: mcp.url }) })
      .where('id', '=', 'tracker')
      .execute();
  });
  afterAll(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    await lc?.close();
    await mcp?.close();
    await api?.close();
  });

  it('proxy: the upstream keeps its own RateLimit fields; past the user limit, 429 and no upstream request', async () => {
    const bearer = { authorization: `Bearer ${await svc.token('u-alice')}` };
    for (let n = 0; n < proxyPerUser; n++) {
      const r = await fetch(`${svc.url}${proxyPath(counted)}`, { headers: bearer });
      expect(r.status, await r.text()).toBe(200);
      expect(r.headers.get('ratelimit-limit')).toBe('50');
      expect(r.headers.get('ratelimit-remaining')).toBe('41');
      expect(r.headers.get('ratelimit-reset')).toBeNull();
    }
    expect(api.received).toHaveLength(proxyPerUser);
    const refused = await fetch(`${svc.url}${proxyPath(counted)}`, { headers: bearer });
    expect(refused.status).toBe(429);
    expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(refused.headers.get('ratelimit-limit')).toBe(String(proxyPerUser));
    expect(await refused.json()).toMatchObject({ code: 'rate_limited', status: 429 });
    await sleep(100);
    expect(api.received).toHaveLength(proxyPerUser);
  });

  it('gateway: past the user limit, the MCP client sees HTTP 429 and the upstream sees nothing; another user goes on', async () => {
    const agent = async (userId: string) => {
      const client = new Client({ name: 'rate-limit-test', version: '1.0.0' });
      const transport = new StreamableHTTPClientTransport(new URL(`${svc.url}/mcp/tracker`), {
        requestInit: { headers: { authorization: `Bearer ${await svc.token(userId)}` } },
      });
      await client.connect(transport);
      clients.push(client);
      return client;
    };
    const alice = await agent('u-alice');
    let refusal: unknown;
    let reached = 0;
    for (let n = 0; n < gatewayPerUser + 1 && refusal === undefined; n++) {
      const seen = mcp.seen.length;
      try {
        await alice.callTool({ name: 'echo', arguments: { text: `call ${n}` } });
        expect(mcp.seen.length).toBeGreaterThan(seen);
        reached += 1;
      } catch (error) {
        refusal = error;
        await sleep(100);
        expect(mcp.seen.length).toBe(seen);
      }
    }
    expect(reached).toBeGreaterThan(0);
    expect(String(refusal)).toContain('429');
    const raw = await fetch(`${svc.url}/mcp/tracker`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${await svc.token('u-alice')}`,
        accept: 'application/json, text/event-stream',
        'content-type': 'application/json',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    expect(raw.status).toBe(429);
    expect(raw.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(Number(raw.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await raw.json()).toMatchObject({
      code: 'rate_limited',
      detail: expect.stringContaining('MCP gateway'),
    });

    const bob = await agent('u-bob');
    const result = (await bob.callTool({ name: 'echo', arguments: { text: 'bob' } })) as {
      content: Array<{ text?: string }>;
    };
    expect(result.content[0]?.text).toBe('echo: bob');
  });
});
