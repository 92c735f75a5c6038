import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  type ClientCapabilities,
  ElicitRequestSchema,
  ErrorCode,
  McpError,
  ToolListChangedNotificationSchema,
  UrlElicitationRequiredError,
} from '@modelcontextprotocol/sdk/types.js';
import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintToken } from '../../src/identity/jwt.js';
import { McpElicitationRepository } from '../../src/store/repos/mcp-elicitations.js';
import type { Database } from '../../src/store/types.js';
import { databaseKinds } from '../support/databases.js';
import { type Lifecycle, startLifecycle } from '../support/lifecycle.js';
import { type TestService, testJwtSecret } from '../support/service.js';
import { type McpUpstream, requiredScope, startMcpUpstream } from './mcp-upstream.js';

const scopes = ['openid', 'offline_access', 'items:read'];
const trackerTools = ['admin-report', 'ask', 'drop', 'echo', 'nap', 'slow'];

describe.each(databaseKinds)('the aggregate MCP gateway /mcp against real MCP servers, on %s', (kind) => {
  let lc: Lifecycle;
  let svc: TestService;
  let tracker: McpUpstream;
  let wiki: McpUpstream;
  let db: Kysely<Database>;
  let aliceWiki: string;
  const jwts: string[] = [];
  const clients: Client[] = [];

  const agent = async (userId: string, capabilities: ClientCapabilities = {}) => {
    const jwt = await svc.token(userId);
    jwts.push(jwt);
    const client = new Client({ name: 'test-agent', version: '1.0.0' }, { capabilities });
    const transport = new StreamableHTTPClientTransport(new URL(`${svc.url}/mcp`), {
      requestInit: { headers: { authorization: `Bearer ${jwt}` } },
    });
    await client.connect(transport);
    clients.push(client);
    return { client, transport };
  };
  const textOf = (result: unknown) =>
    ((result as { content: Array<{ type: string; text?: string }> }).content[0]?.text ?? '') as string;
  const post = async (userId: string, body: string, headers: Record<string, string> = {}) => {
    const r = await fetch(`${svc.url}/mcp`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${await svc.token(userId)}`,
        accept: 'application/json, text/event-stream',
        'content-type': 'application/json',
        ...headers,
      },
      body,
    });
    return { status: r.status, text: await r.text() };
  };

  beforeAll(async () => {
    lc = await startLifecycle({
      kind,
      webhooks: false,
      extraIntegrations: ['tracker', 'wiki', 'vault'].map((id) => ({
        id,
        name: { tracker: 'Issue tracker', wiki: 'Team wiki', vault: 'Vault' }[id]!,
        provider: 'demo',
        scopes,
        api: { baseUrl: 'http://127.0.0.1:9/' },
      })),
    });
    tracker = await startMcpUpstream(lc.oidc.issuer);
    wiki = await startMcpUpstream(lc.oidc.issuer);
    svc = await lc.startService();
    await lc.connect(svc, 'u-alice', 'alice', 'tracker');
    aliceWiki = await lc.connect(svc, 'u-alice', 'alice', 'wiki');
    await lc.connect(svc, 'u-bob', 'alice', 'tracker');
    await lc.connect(svc, 'u-alice', 'alice', 'vault');
    db = svc.service.ctx.store.db;
    for (const [id, upstream] of [
      ['tracker', tracker],
      ['wiki', wiki],
      ['vault', tracker],
    ] as const) {
      await db
        .updateTable('integrations')
        .set({ kind: 'mcp', settings: JSON.stringify({ scopes, url: upstream.url }) })
        .where('id', '=', id)
        .execute();
    }
    // An MCP server alice has connected, then disabled by an administrator: she may not use it.
    await db.updateTable('integrations').set({ enabled: 0 }).where('id', '=', 'vault').execute();
  });

  afterAll(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    await lc?.close();
    await tracker?.close();
    await wiki?.close();
  });

  it('leaves out a server limited to groups the caller is in none of, and refuses its names; members get it', async () => {
    const limit = (groups?: string[]) =>
      db
        .updateTable('integrations')
        .set({
          settings: JSON.stringify({ scopes, url: wiki.url, ...(groups ? { groups } : {}) }),
          updated_at: Date.now(),
        })
        .where('id', '=', 'wiki')
        .execute();
    const connectAs = async (groups?: string[]) => {
      const jwt = await mintToken(testJwtSecret, { sub: 'u-alice', ...(groups ? { groups } : {}) });
      jwts.push(jwt);
      const client = new Client({ name: 'test-agent', version: '1.0.0' }, { capabilities: {} });
      await client.connect(
        new StreamableHTTPClientTransport(new URL(`${svc.url}/mcp`), {
          requestInit: { headers: { authorization: `Bearer ${jwt}` } },
        }),
      );
      clients.push(client);
      return client;
    };
    await limit(['wiki-readers']);
    try {
      await new Promise((r) => setTimeout(r, 1100)); // the gateway's catalog cache
      const outsider = await connectAs(['sales']);
      const names = (await outsider.listTools()).tools.map((t) => t.name);
      expect(names).toContain('tracker__echo');
      expect(names.filter((n) => n.startsWith('wiki__'))).toEqual([]);
      await expect(outsider.callTool({ name: 'wiki__echo', arguments: { text: 'x' } })).rejects.toMatchObject(
        {
          code: ErrorCode.InvalidParams,
        },
      );
      const member = await connectAs(['wiki-readers']);
      expect((await member.listTools()).tools.map((t) => t.name)).toContain('wiki__echo');
    } finally {
      await limit(undefined);
      await new Promise((r) => setTimeout(r, 1100));
    }
  });

  it('lists the tools of every connected server as <integration>__<name> and routes calls with the user token', async () => {
    const before = { tracker: tracker.seen.length, wiki: wiki.seen.length };
    const { client } = await agent('u-alice');
    expect(client.getServerVersion()?.name).toBe('nunq-connect');
    const names = (await client.listTools()).tools.map((t) => t.name).sort();
    expect(names).toEqual(
      [...trackerTools.map((t) => `tracker__${t}`), ...trackerTools.map((t) => `wiki__${t}`)].sort(),
    );
    expect(textOf(await client.callTool({ name: 'tracker__echo', arguments: { text: 'to tracker' } }))).toBe(
      'echo: to tracker',
    );
    expect(textOf(await client.callTool({ name: 'wiki__echo', arguments: { text: 'to wiki' } }))).toBe(
      'echo: to wiki',
    );
    const seen = [...tracker.seen.slice(before.tracker), ...wiki.seen.slice(before.wiki)];
    expect(seen.filter((s) => s.rpcMethod === 'tools/call')).toHaveLength(2);
    for (const s of seen) {
      expect(s.status).toBe('ok');
      expect(s.sub).toBe('alice');
      expect(jwts.some((j) => s.authorization?.includes(j))).toBe(false);
    }
    const unknown = await client.callTool({ name: 'nowhere__echo', arguments: {} }).catch((e: unknown) => e);
    expect((unknown as McpError).code).toBe(ErrorCode.InvalidParams);
  });

  it('lists and routes prompts and resources, and relays progress', async () => {
    const { client } = await agent('u-alice');
    expect((await client.listPrompts()).prompts.map((p) => p.name).sort()).toEqual([
      'tracker__greet',
      'wiki__greet',
    ]);
    const prompt = await client.getPrompt({ name: 'wiki__greet', arguments: { who: 'Ada' } });
    expect(prompt.messages[0]?.content).toEqual({ type: 'text', text: 'Say hello to Ada' });
    const resources = (await client.listResources()).resources;
    expect(resources.map((r) => r.uri).sort()).toEqual([
      'tracker__tracker://readme',
      'wiki__tracker://readme',
    ]);
    const read = await client.readResource({ uri: 'wiki__tracker://readme' });
    expect(read.contents).toEqual([{ uri: 'wiki__tracker://readme', text: 'tracker readme' }]);
    const progress: number[] = [];
    const result = await client.callTool({ name: 'tracker__slow', arguments: { steps: 3 } }, undefined, {
      onprogress: (p) => progress.push(p.progress),
    });
    expect(textOf(result)).toBe('done after 3 steps');
    expect(progress).toEqual([1, 2, 3]);
  });

  it("relays a server's elicitation during a call to the agent that made it, when the agent can answer", async () => {
    const { client } = await agent('u-alice', { elicitation: { form: {} } });
    const asked: string[] = [];
    client.setRequestHandler(ElicitRequestSchema, async (request) => {
      asked.push(request.params.message);
      return { action: 'accept', content: { name: 'Grace' } };
    });
    expect(textOf(await client.callTool({ name: 'wiki__ask', arguments: {} }))).toBe('hello Grace');
    expect(asked).toEqual(['Who is asking?']);
    const plain = (await agent('u-alice')).client;
    const refused = await plain.callTool({ name: 'wiki__ask', arguments: {} });
    expect(refused.isError).toBe(true);
    expect(textOf(refused)).toContain('does not support elicitation/create');
  });

  it('an upstream 401 is retried once with a newer token', async () => {
    const { client } = await agent('u-alice');
    const before = tracker.seen.length;
    tracker.refuseNext(1);
    expect(textOf(await client.callTool({ name: 'tracker__echo', arguments: { text: 'again' } }))).toBe(
      'echo: again',
    );
    const calls = tracker.seen.slice(before).filter((s) => s.rpcMethod === 'tools/call');
    expect(calls.map((s) => s.status)).toEqual(['refused', 'ok']);
    expect(calls[0]?.authorization).not.toBe(calls[1]?.authorization);
  });

  it('lists only connected servers; a call to another asks the user to connect it', async () => {
    const { client } = await agent('u-bob', { elicitation: { url: {} } });
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names.sort()).toEqual(trackerTools.map((t) => `tracker__${t}`).sort());
    const error = await client
      .callTool({ name: 'wiki__echo', arguments: { text: 'x' } })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UrlElicitationRequiredError);
    const elicitation = (error as UrlElicitationRequiredError).elicitations[0]!;
    expect(elicitation.url).toBe(`${svc.url}/connect/wiki?elicitation=${elicitation.elicitationId}`);
    expect(elicitation.message).toContain('Team wiki');

    const plain = (await agent('u-bob')).client;
    const result = await plain.callTool({ name: 'wiki__echo', arguments: { text: 'x' } });
    expect(result.isError).toBe(true);
    expect(textOf(result)).toContain('Team wiki');
    expect(textOf(result)).toContain(`${svc.url}/connect/wiki?elicitation=`);
  });

  it('a 403 insufficient_scope on a call becomes a step-up link for granted ∪ challenged scopes', async () => {
    const { client } = await agent('u-alice', { elicitation: { url: {} } });
    const error = await client
      .callTool({ name: 'tracker__admin-report', arguments: {} })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UrlElicitationRequiredError);
    const id = (error as UrlElicitationRequiredError).elicitations[0]!.elicitationId;
    const row = await new McpElicitationRepository(db).findForUser(id, 'u-alice');
    const granted = JSON.parse(
      (
        await db
          .selectFrom('connections')
          .select('scopes')
          .where('user_id', '=', 'u-alice')
          .where('integration_id', '=', 'tracker')
          .executeTakeFirstOrThrow()
      ).scopes,
    ) as string[];
    expect(JSON.parse(row!.scopes!)).toEqual([...granted, requiredScope]);
  });

  it('a cancelled call is cancelled at the server too', async () => {
    const { client } = await agent('u-alice');
    const before = tracker.seen.length;
    const abort = new AbortController();
    setTimeout(() => abort.abort(), 60);
    const call = client.callTool({ name: 'tracker__slow', arguments: { steps: 10 } }, undefined, {
      signal: abort.signal,
    });
    await expect(call).rejects.toThrow();
    const cancelled = () => tracker.seen.slice(before).some((s) => s.rpcMethod === 'notifications/cancelled');
    for (let i = 0; i < 30 && !cancelled(); i++) await new Promise((r) => setTimeout(r, 50));
    expect(cancelled()).toBe(true);
  });

  it('a server that drops the stream mid-call gives an error naming it; calls go on', async () => {
    const { client } = await agent('u-alice');
    const error = await client.callTool({ name: 'tracker__drop', arguments: {} }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(McpError);
    expect((error as McpError).message).toContain('Issue tracker (tracker)');
    expect(textOf(await client.callTool({ name: 'tracker__echo', arguments: { text: 'on' } }))).toBe(
      'echo: on',
    );
  });

  it('a tool that works longer than the outbound timeout without a word still answers, on both endpoints', async () => {
    const aggregate = (await agent('u-alice')).client;
    const jwt = await svc.token('u-alice');
    const direct = new Client({ name: 'test-agent', version: '1.0.0' });
    clients.push(direct);
    await direct.connect(
      new StreamableHTTPClientTransport(new URL(`${svc.url}/mcp/tracker`), {
        requestInit: { headers: { authorization: `Bearer ${jwt}` } },
      }),
    );
    const ms = svc.config.outbound.timeoutMs + 1_000;
    const [viaAggregate, viaDirect] = await Promise.all([
      aggregate.callTool({ name: 'tracker__nap', arguments: { ms } }),
      direct.callTool({ name: 'nap', arguments: { ms } }),
    ]);
    expect(textOf(viaAggregate)).toBe(`awake after ${ms} ms`);
    expect(textOf(viaDirect)).toBe(`awake after ${ms} ms`);
  }, 30_000);

  /** The JSON-RPC messages of an answer, JSON or SSE. */
  const messagesOf = (text: string) =>
    text.trimStart().startsWith('{') || text.trimStart().startsWith('[')
      ? [JSON.parse(text)].flat()
      : text
          .split('\n')
          .filter((l) => l.startsWith('data: '))
          .map((l) => JSON.parse(l.slice(6)));
  const rawCall = async (sessionId: string, id: unknown, method: string, params: unknown) => {
    const r = await post('u-alice', JSON.stringify({ jsonrpc: '2.0', id, method, params }), {
      'mcp-session-id': sessionId,
      'mcp-protocol-version': '2025-11-25',
    });
    expect(r.status).toBe(200);
    const answers = messagesOf(r.text).filter((m) => 'result' in m || 'error' in m);
    expect(answers).toHaveLength(1);
    return answers[0] as {
      id: unknown;
      result?: Record<string, unknown>;
      error?: { code: number; message: string; data?: unknown };
    };
  };

  it("gives the agent's id back, whatever it is, and sends the server its own name under an id of ours", async () => {
    const a = (await agent('u-alice')).transport.sessionId!;
    const b = (await agent('u-alice')).transport.sessionId!;
    const before = tracker.seen.length;
    // Two sessions of the user share one upstream session: the same id at once must not mix up.
    const [one, two, three] = await Promise.all([
      rawCall(a, 7, 'tools/call', { name: 'tracker__echo', arguments: { text: 'from a' } }),
      rawCall(b, 7, 'tools/call', { name: 'tracker__echo', arguments: { text: 'from b' } }),
      rawCall(a, 'agent-id-8', 'tools/call', { name: 'tracker__echo', arguments: { text: 'string id' } }),
    ]);
    expect(one.id).toBe(7);
    expect(textOf(one.result)).toBe('echo: from a');
    expect(two.id).toBe(7);
    expect(textOf(two.result)).toBe('echo: from b');
    expect(three.id).toBe('agent-id-8');
    expect(textOf(three.result)).toBe('echo: string id');
    // (A call the server refused with 401 is sent again with a fresh token: count what it served.)
    const calls = tracker.seen.slice(before).filter((s) => s.rpcMethod === 'tools/call' && s.status === 'ok');
    expect(calls.map((c) => c.rpcName)).toEqual(['echo', 'echo', 'echo']);
    expect(new Set(calls.map((c) => c.rpcId)).size).toBe(3);
    for (const c of calls) expect([7, 'agent-id-8']).not.toContain(c.rpcId);
  });

  it('answers the same unknown-name error for a name without a server and an unknown server, and integration_disabled for a disabled one', async () => {
    const session = (await agent('u-alice')).transport.sessionId!;
    const before = tracker.seen.length;
    const names = ['nowhere__echo', 'echo', '__echo'];
    const answers = await Promise.all(
      names.map((name, i) => rawCall(session, i, 'tools/call', { name, arguments: { text: 'x' } })),
    );
    for (const [i, answer] of answers.entries()) {
      expect(answer.id).toBe(i);
      expect(answer.error?.code).toBe(ErrorCode.InvalidParams);
      // The text names only what was asked: it does not tell whether the server exists.
      expect(answer.error?.message.replace(JSON.stringify(names[i]), 'NAME')).toBe(
        answers[0]!.error?.message.replace(JSON.stringify(names[0]), 'NAME'),
      );
    }
    // A server alice may use but an administrator disabled: kept, unusable, and said so (the
    // proxy's and /mcp/:id's 409 integration_disabled, as a JSON-RPC error), on all three routed
    // methods.
    const disabled = await Promise.all([
      rawCall(session, 't', 'tools/call', { name: 'vault__echo', arguments: { text: 'x' } }),
      rawCall(session, 'p', 'prompts/get', { name: 'vault__greet', arguments: { who: 'x' } }),
      rawCall(session, 'r', 'resources/read', { uri: 'vault__tracker://readme' }),
    ]);
    for (const answer of disabled) {
      expect(answer.error?.code).toBe(ErrorCode.InvalidRequest);
      expect(answer.error?.data).toEqual({ code: 'integration_disabled', integration: 'vault' });
      expect(answer.error?.message).toContain('disabled by an administrator');
    }
    expect(tracker.seen.length).toBe(before);
  });

  it('a call to a disconnected server answers with the Connect link under the agent id, without asking the server', async () => {
    const { transport } = await agent('u-bob');
    const before = wiki.seen.length;
    const r = await post(
      'u-bob',
      JSON.stringify({
        jsonrpc: '2.0',
        id: 'bob-1',
        method: 'tools/call',
        params: { name: 'wiki__echo', arguments: {} },
      }),
      {
        'mcp-session-id': transport.sessionId!,
      },
    );
    const [answer] = messagesOf(r.text);
    expect(answer.id).toBe('bob-1');
    expect(answer.result.isError).toBe(true);
    expect(textOf(answer.result)).toContain(`${svc.url}/connect/wiki?elicitation=`);
    expect(wiki.seen.length).toBe(before);
  });

  it("refuses another user's session and garbage JSON-RPC", async () => {
    const { transport } = await agent('u-alice');
    const list = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' });
    const asBob = await post('u-bob', list, { 'mcp-session-id': transport.sessionId! });
    expect(asBob.status).toBe(404);
    const garbage = await post('u-alice', 'nope', { 'mcp-session-id': transport.sessionId! });
    expect(garbage.status).toBe(400);
    expect(JSON.parse(garbage.text).error.code).toBe(ErrorCode.ParseError);
    const notRpc = await post('u-alice', '{"id":1}', { 'mcp-session-id': transport.sessionId! });
    expect(notRpc.status).toBe(400);
    expect(JSON.parse(notRpc.text).error.code).toBe(ErrorCode.InvalidRequest);
    const anonymous = await fetch(`${svc.url}/mcp`, {
      method: 'POST',
      body: list,
      headers: { 'content-type': 'application/json' },
    });
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toMatch(/^Bearer/);
  });

  it('no token appears in any log line', () => {
    const secrets = lc.tokenCalls
      .flatMap((c) => [c.accessToken, c.refreshToken, c.idToken])
      .filter((t): t is string => t !== undefined);
    expect(secrets.length).toBeGreaterThan(0);
    const logs = svc.logs.join('\n');
    for (const secret of secrets) expect(logs.includes(secret)).toBe(false);
  });

  it('tells the session tools/list_changed when a connection is removed, and stops listing its tools', async () => {
    const { client } = await agent('u-alice');
    const changed: number[] = [];
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      changed.push(Date.now());
    });
    expect((await client.listTools()).tools.some((t) => t.name.startsWith('wiki__'))).toBe(true);
    // Give the client's GET stream a moment to open.
    await new Promise((r) => setTimeout(r, 500));
    const r = await svc.api('u-alice', `/api/v1/connections/${aliceWiki}`, { method: 'DELETE' });
    expect(r.status).toBe(204);
    for (let i = 0; i < 50 && changed.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(changed.length).toBeGreaterThan(0);
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names.some((n) => n.startsWith('wiki__'))).toBe(false);
    expect(names.some((n) => n.startsWith('tracker__'))).toBe(true);
  });
});
