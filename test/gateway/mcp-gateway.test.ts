import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  type ClientCapabilities,
  ElicitationCompleteNotificationSchema,
  ElicitRequestSchema,
  ErrorCode,
  McpError,
  UrlElicitationRequiredError,
} from '@modelcontextprotocol/sdk/types.js';
import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { McpElicitationRepository } from '../../src/store/repos/mcp-elicitations.js';
import type { Database } from '../../src/store/types.js';
import { databaseKinds } from '../support/databases.js';
import { type Lifecycle, startLifecycle } from '../support/lifecycle.js';
import type { TestService } from '../support/service.js';
import {
  type McpUpstream,
  requiredScope,
  startMcpUpstream,
  trackerIntegration,
  trackerIsMcp,
} from './mcp-upstream.js';

describe.each(databaseKinds)(
  'the MCP gateway /mcp/:integrationId against a real MCP server, on %s',
  (kind) => {
    let lc: Lifecycle;
    let svc: TestService;
    let upstream: McpUpstream;
    let db: Kysely<Database>;
    let elicitations: McpElicitationRepository;
    let bobConnection: string;
    /** Every nunq JWT an agent used: the upstream must never see one. */
    const jwts: string[] = [];
    /** Raw answers the tests read, for the token scan at the end. */
    const answers: string[] = [];
    const clients: Client[] = [];

    const agent = async (
      userId: string,
      capabilities: ClientCapabilities = {},
      path = '/mcp/tracker',
    ): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> => {
      const jwt = await svc.token(userId);
      jwts.push(jwt);
      const client = new Client({ name: 'test-agent', version: '1.0.0' }, { capabilities });
      const transport = new StreamableHTTPClientTransport(new URL(`${svc.url}${path}`), {
        requestInit: { headers: { authorization: `Bearer ${jwt}` } },
      });
      await client.connect(transport);
      clients.push(client);
      return { client, transport };
    };
    const raw = async (
      userId: string | undefined,
      init: Omit<RequestInit, 'headers'> & { headers?: Record<string, string> },
      path = '/mcp/tracker',
    ) => {
      const headers: Record<string, string> = {
        accept: 'application/json, text/event-stream',
        'content-type': 'application/json',
        ...(init.headers ?? {}),
      };
      if (userId !== undefined) headers.authorization = `Bearer ${await svc.token(userId)}`;
      const r = await fetch(`${svc.url}${path}`, { ...init, headers });
      const text = await r.text();
      answers.push(`${r.status} ${[...r.headers].join('\n')}\n${text}`);
      return { status: r.status, headers: r.headers, text };
    };
    const textOf = (result: unknown) =>
      ((result as { content: Array<{ type: string; text?: string }> }).content[0]?.text ?? '') as string;

    beforeAll(async () => {
      lc = await startLifecycle({
        kind,
        webhooks: false,
        extraIntegrations: [trackerIntegration],
      });
      upstream = await startMcpUpstream(lc.oidc.issuer);
      svc = await lc.startService();
      await lc.connect(svc, 'u-alice', 'alice', 'tracker');
      bobConnection = await lc.connect(svc, 'u-bob', 'alice', 'tracker');
      db = svc.service.ctx.store.db;
      elicitations = new McpElicitationRepository(db);
      // The tracker becomes an MCP server integration (Connect for MCP servers is wired elsewhere;
      // its connections are made here through the OAuth flow of the same authorization server).
      await trackerIsMcp(db, upstream.url);
      await db
        .insertInto('integrations')
        .values({
          id: 'switched-off',
          kind: 'mcp',
          name: 'Switched off',
          provider_id: null,
          settings: JSON.stringify({ scopes: [], url: upstream.url }),
          client_secret_sealed: null,
          source: 'admin',
          enabled: 0,
          created_at: Date.now(),
          updated_at: Date.now(),
        })
        .execute();
    });

    afterAll(async () => {
      await Promise.allSettled(clients.map((c) => c.close()));
      await lc?.close();
      await upstream?.close();
    });

    it("lists and calls tools with the user's own token; the upstream never sees the nunq credential", async () => {
      const before = upstream.seen.length;
      const { client, transport } = await agent('u-alice');
      const tools = await client.listTools();
      expect(tools.tools.map((t) => t.name).sort()).toEqual([
        'admin-report',
        'ask',
        'drop',
        'echo',
        'nap',
        'slow',
      ]);
      expect(textOf(await client.callTool({ name: 'echo', arguments: { text: 'hi' } }))).toBe('echo: hi');
      expect(client.getServerVersion()?.name).toBe('tracker-upstream');
      const mine = upstream.seen.slice(before);
      expect(mine.length).toBeGreaterThanOrEqual(3);
      for (const s of mine) {
        expect(s.status).toBe('ok');
        expect(s.sub).toBe('alice');
        expect(s.cookie).toBeUndefined();
        expect(jwts.some((j) => s.authorization?.includes(j))).toBe(false);
      }
      // Our session id is ours: the upstream's is never shown to the client.
      const upstreamIds = new Set(mine.map((s) => s.sessionId).filter((s) => s !== undefined));
      expect(upstreamIds.size).toBe(1);
      expect(transport.sessionId).toBeDefined();
      expect(upstreamIds.has(transport.sessionId!)).toBe(false);
    });

    it('passes progress notifications and a server-to-client elicitation through', async () => {
      const { client } = await agent('u-alice', { elicitation: { form: {} } });
      const asked: string[] = [];
      client.setRequestHandler(ElicitRequestSchema, async (request) => {
        asked.push(request.params.message);
        return { action: 'accept', content: { name: 'Ada' } };
      });
      expect(textOf(await client.callTool({ name: 'ask', arguments: {} }))).toBe('hello Ada');
      expect(asked).toEqual(['Who is asking?']);
      const progress: number[] = [];
      const result = await client.callTool({ name: 'slow', arguments: { steps: 3 } }, undefined, {
        onprogress: (p) => progress.push(p.progress),
      });
      expect(textOf(result)).toBe('done after 3 steps');
      expect(progress).toEqual([1, 2, 3]);
    });

    it('an upstream 401 forces exactly one refresh and one retry', async () => {
      const { client } = await agent('u-alice');
      const refreshes = lc.refreshCount();
      const before = upstream.seen.length;
      upstream.refuseNext(1);
      expect(textOf(await client.callTool({ name: 'echo', arguments: { text: 'again' } }))).toBe(
        'echo: again',
      );
      const mine = upstream.seen.slice(before).filter((s) => s.rpcMethod === 'tools/call');
      expect(mine.map((s) => s.status)).toEqual(['refused', 'ok']);
      // The retry carried a newer token: refreshed by force now, or by the scheduler just before.
      expect(mine[0]?.authorization).not.toBe(mine[1]?.authorization);
      expect(lc.refreshCount() - refreshes).toBeLessThanOrEqual(1);
    });

    it("refuses another user's session id, garbage JSON-RPC, and callers without a bearer", async () => {
      const { transport } = await agent('u-alice');
      const aliceSession = transport.sessionId!;
      const list = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' });
      const asBob = await raw('u-bob', {
        method: 'POST',
        body: list,
        headers: { 'mcp-session-id': aliceSession, 'mcp-protocol-version': '2025-11-25' },
      });
      expect(asBob.status).toBe(404);
      expect(JSON.parse(asBob.text).error.message).toBe('Session not found');
      const getAsBob = await raw('u-bob', {
        method: 'GET',
        headers: { accept: 'text/event-stream', 'mcp-session-id': aliceSession },
      });
      expect(getAsBob.status).toBe(404);
      const deleteAsBob = await raw('u-bob', {
        method: 'DELETE',
        headers: { 'mcp-session-id': aliceSession },
      });
      expect(deleteAsBob.status).toBe(404);
      // Alice's session still works.
      const asAlice = await raw('u-alice', {
        method: 'POST',
        body: list,
        headers: { 'mcp-session-id': aliceSession, 'mcp-protocol-version': '2025-11-25' },
      });
      expect(asAlice.status).toBe(200);
      expect(asAlice.text).toContain('echo');
      const withCookie = await raw('u-alice', {
        method: 'POST',
        body: list,
        headers: {
          'mcp-session-id': aliceSession,
          'mcp-protocol-version': '2025-11-25',
          cookie: 'nunq_session=abc',
        },
      });
      expect(withCookie.status).toBe(200);
      expect(upstream.seen.at(-1)).toMatchObject({
        rpcMethod: 'tools/list',
        cookie: undefined,
        sub: 'alice',
      });

      const notJson = await raw('u-alice', { method: 'POST', body: '{"jsonrpc": "2.0", "id": 1, ' });
      expect(notJson.status).toBe(400);
      expect(JSON.parse(notJson.text)).toMatchObject({
        jsonrpc: '2.0',
        id: null,
        error: { code: ErrorCode.ParseError },
      });
      for (const body of [
        '{"hello":"world"}',
        '[]',
        '[{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"x","version":"1"}}},{"jsonrpc":"2.0","method":"x"}]',
        '42',
      ]) {
        const r = await raw('u-alice', { method: 'POST', body });
        expect(r.status, body).toBe(400);
        expect(JSON.parse(r.text).error.code, body).toBe(ErrorCode.InvalidRequest);
      }
      const badInit = await raw('u-alice', {
        method: 'POST',
        body: '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}',
      });
      expect(badInit.status).toBe(400);
      expect(JSON.parse(badInit.text).error.code).toBe(ErrorCode.InvalidParams);
      const noSession = await raw('u-alice', { method: 'POST', body: list });
      expect(noSession.status).toBe(400);

      const anonymous = await raw(undefined, { method: 'POST', body: list });
      expect(anonymous.status).toBe(401);
      expect(anonymous.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect(anonymous.headers.get('content-type')).toContain('application/problem+json');
      const badToken = await raw(undefined, {
        method: 'POST',
        body: list,
        headers: { authorization: 'Bearer not-a-jwt' },
      });
      expect(badToken.status).toBe(401);
      expect(badToken.headers.get('www-authenticate')).toMatch(/^Bearer/);
    });

    it('answers 404 for unknown and non-MCP integrations and 409 for a disabled one', async () => {
      const init = JSON.stringify({
        jsonrpc: '2.0',
        id: 0,
        method: 'initialize',
        params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } },
      });
      expect((await raw('u-alice', { method: 'POST', body: init }, '/mcp/nope')).status).toBe(404);
      expect((await raw('u-alice', { method: 'POST', body: init }, '/mcp/items')).status).toBe(404);
      const off = await raw('u-alice', { method: 'POST', body: init }, '/mcp/switched-off');
      expect(off.status).toBe(409);
      expect(JSON.parse(off.text).code).toBe('integration_disabled');
    });

    it('a user who has not connected: initialize succeeds, then -32042 for a URL-elicitation client, an isError result for another', async () => {
      const { client } = await agent('u-carol', { elicitation: { url: {} } });
      expect(client.getServerVersion()?.name).toBe('nunq-connect/tracker');
      const error = await client
        .callTool({ name: 'echo', arguments: { text: 'x' } })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UrlElicitationRequiredError);
      const [elicitation] = (error as UrlElicitationRequiredError).elicitations;
      expect(elicitation?.mode).toBe('url');
      expect(elicitation?.url).toBe(`${svc.url}/connect/tracker?elicitation=${elicitation?.elicitationId}`);
      expect(elicitation?.elicitationId).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(elicitation?.message).toContain('Issue tracker');
      const row = await elicitations.findForUser(elicitation!.elicitationId, 'u-carol');
      expect(row).toMatchObject({ integration_id: 'tracker', scopes: null, status: 'pending' });
      expect(await elicitations.findForUser(elicitation!.elicitationId, 'u-alice')).toBeUndefined();

      const plain = (await agent('u-carol')).client;
      expect((await plain.listTools()).tools).toEqual([]);
      const result = await plain.callTool({ name: 'echo', arguments: { text: 'x' } });
      expect(result.isError).toBe(true);
      expect(textOf(result)).toContain('Issue tracker');
      expect(textOf(result)).toMatch(
        new RegExp(`${svc.url}/connect/tracker\\?elicitation=[A-Za-z0-9_-]{43}`),
      );
    });

    it('once the user has connected, the session is told on its GET stream and the retried call succeeds', async () => {
      // Bob "has not connected yet": his connection is moved aside, and put back when he connects.
      await db
        .updateTable('connections')
        .set({ user_id: 'u-bob-away' })
        .where('id', '=', bobConnection)
        .execute();
      await new Promise((r) => setTimeout(r, 1_300));
      const { client } = await agent('u-bob', { elicitation: { url: {} } });
      const completed: string[] = [];
      client.setNotificationHandler(ElicitationCompleteNotificationSchema, (n) => {
        completed.push(n.params.elicitationId);
      });
      const error = await client
        .callTool({ name: 'echo', arguments: { text: 'bob' } })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UrlElicitationRequiredError);
      const id = (error as UrlElicitationRequiredError).elicitations[0]!.elicitationId;
      const upstreamSessions = upstream.sessionCount();

      await db.updateTable('connections').set({ user_id: 'u-bob' }).where('id', '=', bobConnection).execute();
      expect(await elicitations.markComplete(id)).toBe(true);
      for (let i = 0; i < 50 && completed.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
      expect(completed).toEqual([id]);

      expect(textOf(await client.callTool({ name: 'echo', arguments: { text: 'bob' } }))).toBe('echo: bob');
      expect(upstream.sessionCount()).toBe(upstreamSessions + 1);
      const bobs = upstream.seen.filter((s) => s.rpcMethod === 'initialize').at(-1);
      expect(bobs?.sub).toBe('alice');
      // Our stream ended after telling; the client's reconnection now gets the server's own stream.
      const call = upstream.seen.filter((s) => s.rpcMethod === 'tools/call').at(-1);
      const upstreamGet = () =>
        upstream.seen.some((s) => s.method === 'GET' && s.sessionId === call?.sessionId);
      for (let i = 0; i < 50 && !upstreamGet(); i++) await new Promise((r) => setTimeout(r, 100));
      expect(upstreamGet()).toBe(true);
    });

    it('a connection that needs reconnecting asks the user to reconnect it', async () => {
      await db
        .updateTable('connections')
        .set({ status: 'needs_reauth', status_reason: 'invalid_grant' })
        .where('id', '=', bobConnection)
        .execute();
      try {
        await new Promise((r) => setTimeout(r, 1_300));
        const { client } = await agent('u-bob', { elicitation: { url: {} } });
        expect(client.getServerVersion()?.name).toBe('nunq-connect/tracker');
        const error = await client
          .callTool({ name: 'echo', arguments: { text: 'x' } })
          .catch((e: unknown) => e);
        expect(error).toBeInstanceOf(UrlElicitationRequiredError);
        const elicitation = (error as UrlElicitationRequiredError).elicitations[0]!;
        expect(elicitation.message).toContain('must be renewed');
        expect(elicitation.url).toBe(`${svc.url}/connect/tracker?elicitation=${elicitation.elicitationId}`);
      } finally {
        await db
          .updateTable('connections')
          .set({ status: 'active', status_reason: null })
          .where('id', '=', bobConnection)
          .execute();
      }
    });

    it('a 403 insufficient_scope asks for the granted scopes plus the challenged ones (step-up)', async () => {
      const { client } = await agent('u-alice', { elicitation: { url: {} } });
      const error = await client.callTool({ name: 'admin-report', arguments: {} }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UrlElicitationRequiredError);
      const id = (error as UrlElicitationRequiredError).elicitations[0]!.elicitationId;
      const row = await elicitations.findForUser(id, 'u-alice');
      const granted = JSON.parse(
        (
          await db
            .selectFrom('connections')
            .select('scopes')
            .where('user_id', '=', 'u-alice')
            .executeTakeFirstOrThrow()
        ).scopes,
      ) as string[];
      expect(granted.length).toBeGreaterThan(0);
      expect(JSON.parse(row!.scopes!)).toEqual([...granted, requiredScope]);
      expect(row!.scopes).not.toContain('?');

      const plain = (await agent('u-alice')).client;
      const result = await plain.callTool({ name: 'admin-report', arguments: {} });
      expect(result.isError).toBe(true);
      expect(textOf(result)).toContain('Issue tracker needs more permissions');
    });

    it('asks at most 3 times per session, then answers a plain error', async () => {
      const { client } = await agent('u-dave', { elicitation: { url: {} } });
      const ids: string[] = [];
      for (let attempt = 1; attempt <= 3; attempt++) {
        const error = await client
          .callTool({ name: 'echo', arguments: { text: 'x' } })
          .catch((e: unknown) => e);
        expect(error).toBeInstanceOf(UrlElicitationRequiredError);
        const id = (error as UrlElicitationRequiredError).elicitations[0]!.elicitationId;
        // Asking again before the link was used gives the same link, not a new attempt.
        const again = await client
          .callTool({ name: 'echo', arguments: { text: 'x' } })
          .catch((e: unknown) => e);
        expect((again as UrlElicitationRequiredError).elicitations[0]!.elicitationId).toBe(id);
        ids.push(id);
        await elicitations.markComplete(id);
      }
      expect(new Set(ids).size).toBe(3);
      const fourth = await client
        .callTool({ name: 'echo', arguments: { text: 'x' } })
        .catch((e: unknown) => e);
      expect(fourth).toBeInstanceOf(McpError);
      expect(fourth).not.toBeInstanceOf(UrlElicitationRequiredError);
      expect((fourth as McpError).message).toContain('3 attempts');
    });

    it('a cancelled call is cancelled at the server too', async () => {
      const { client } = await agent('u-alice');
      const before = upstream.seen.length;
      const abort = new AbortController();
      setTimeout(() => abort.abort(), 60);
      const call = client.callTool({ name: 'slow', arguments: { steps: 10 } }, undefined, {
        signal: abort.signal,
      });
      await expect(call).rejects.toThrow();
      const cancelled = () =>
        upstream.seen.slice(before).some((s) => s.rpcMethod === 'notifications/cancelled');
      for (let i = 0; i < 30 && !cancelled(); i++) await new Promise((r) => setTimeout(r, 50));
      expect(cancelled()).toBe(true);
    });

    it('an upstream that drops the stream mid-call gives a JSON-RPC error naming the integration; others go on', async () => {
      const { client } = await agent('u-alice');
      const error = await client.callTool({ name: 'drop', arguments: {} }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(McpError);
      expect((error as McpError).message).toContain('Issue tracker (tracker)');
      expect(textOf(await client.callTool({ name: 'echo', arguments: { text: 'still' } }))).toBe(
        'echo: still',
      );
    });

    it('a session opened upstream later speaks the version the server negotiated', async () => {
      upstream.failNextInitialize();
      const jwt = await svc.token('u-alice');
      const client = new Client({ name: 'downgrade-me', version: '1.0.0' });
      clients.push(client);
      await client.connect(
        new StreamableHTTPClientTransport(new URL(`${svc.url}/mcp/tracker`), {
          requestInit: { headers: { authorization: `Bearer ${jwt}` } },
        }),
      );
      // Answered here (the server was down), with the client's version.
      expect(client.getServerVersion()?.name).toBe('nunq-connect/tracker');
      const before = upstream.seen.length;
      expect(textOf(await client.callTool({ name: 'echo', arguments: { text: 'old' } }))).toBe('echo: old');
      const call = upstream.seen.slice(before).find((s) => s.rpcMethod === 'tools/call');
      expect(call?.protocolVersion).toBe('2025-03-26');
    });

    it('re-opens the upstream session when the server forgot it', async () => {
      const { client } = await agent('u-alice');
      upstream.forgetSessions();
      expect(textOf(await client.callTool({ name: 'echo', arguments: { text: 'after restart' } }))).toBe(
        'echo: after restart',
      );
    });

    it('DELETE ends our session and the upstream one', async () => {
      const { client, transport } = await agent('u-alice');
      await client.listTools();
      const id = transport.sessionId!;
      const before = upstream.seen.filter((s) => s.method === 'DELETE' && s.status === 'ok').length;
      await transport.terminateSession();
      expect(upstream.seen.filter((s) => s.method === 'DELETE' && s.status === 'ok').length).toBe(before + 1);
      const list = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' });
      const after = await raw('u-alice', { method: 'POST', body: list, headers: { 'mcp-session-id': id } });
      expect(after.status).toBe(404);
    });

    it('any instance serves any session: initialize on one, call on another', async () => {
      const other = await lc.startService();
      // Its start synced the catalog from the config file again: the tracker is an MCP server once more.
      await trackerIsMcp(db, upstream.url);
      const jwt = await svc.token('u-alice');
      const headers = {
        authorization: `Bearer ${jwt}`,
        accept: 'application/json, text/event-stream',
        'content-type': 'application/json',
      };
      const init = await fetch(`${svc.url}/mcp/tracker`, {
        method: 'POST',
        headers,
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 0,
          method: 'initialize',
          params: {
            protocolVersion: '2025-11-25',
            capabilities: {},
            clientInfo: { name: 'raw', version: '1' },
          },
        }),
      });
      expect(init.status).toBe(200);
      await init.text();
      const session = init.headers.get('mcp-session-id')!;
      const sessionHeaders = { ...headers, 'mcp-session-id': session, 'mcp-protocol-version': '2025-11-25' };
      const initialized = await fetch(`${other.url}/mcp/tracker`, {
        method: 'POST',
        headers: sessionHeaders,
        body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
      });
      expect(initialized.status).toBe(202);
      const call = await fetch(`${other.url}/mcp/tracker`, {
        method: 'POST',
        headers: sessionHeaders,
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 1,
          method: 'tools/call',
          params: { name: 'echo', arguments: { text: 'elsewhere' } },
        }),
      });
      expect(call.status).toBe(200);
      expect(call.headers.get('mcp-session-id')).toBe(session);
      const text = await call.text();
      answers.push(text);
      expect(text).toContain('echo: elsewhere');
    });

    it('no token appears in any answer or log line', () => {
      const secrets = lc.tokenCalls
        .flatMap((c) => [c.accessToken, c.refreshToken, c.idToken])
        .filter((t): t is string => t !== undefined);
      expect(secrets.length).toBeGreaterThan(0);
      const text = [...answers, ...lc.services.flatMap((s) => s.logs)].join('\n');
      for (const secret of secrets) expect(text.includes(secret)).toBe(false);
    });
  },
);
