import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningMcpServer, startMcpServer } from '../../src/demo/mcp-server.js';
import { createTestDatabase, type TestDatabase } from '../support/databases.js';
import { startTestService, type TestService } from '../support/service.js';
import { signedInAgent, type UserAgent } from '../support/user-agent.js';

/**
 * The console's MCP servers page (issue 10, item 3) against a real OAuth-protected MCP server
 * (MCP SDK + its own authorization server with dynamic registration): the admin pastes a URL,
 * sees what discovery found before anything is saved or registered, saves it, and users see it.
 */
describe('the console adds an MCP server after a preview', () => {
  let database: TestDatabase;
  let peer: RunningMcpServer;
  let svc: TestService;
  let root: UserAgent;
  let csrf: string;

  beforeAll(async () => {
    database = await createTestDatabase('sqlite');
    peer = await startMcpServer({ name: 'console-tools' });
    svc = await startTestService({ database, admins: ['root'], serviceOptions: { background: false } });
    root = await signedInAgent(svc, 'root');
    csrf = JSON.parse((await root.get(`${svc.url}/api/v1/me`)).body).csrfToken;
  });

  afterAll(async () => {
    await svc?.close();
    await peer?.close();
    await database?.drop();
  });

  const mcpRows = () =>
    svc.service.ctx.store.db.selectFrom('integrations').select('id').where('kind', '=', 'mcp').execute();
  const registrations = () => svc.service.ctx.store.db.selectFrom('mcp_registrations').selectAll().execute();

  it('previews what discovery finds, saving and registering nothing', async () => {
    const page = await root.get(`${svc.url}/admin/mcp-servers/preview?url=${encodeURIComponent(peer.url)}`);
    expect(page.status).toBe(200);
    expect(page.body).toContain(`<dd>${peer.url}</dd>`);
    expect(page.body).toContain(`<dd>${peer.issuer}</dd>`);
    expect(page.body).toContain('dynamic client registration');
    expect(page.body).not.toContain('data-testid="mcp-preview-problem"');
    expect(await mcpRows()).toEqual([]);
    expect(await registrations()).toEqual([]);
  });

  it('shows a refused address as a problem before any request', async () => {
    const page = await root.get(
      `${svc.url}/admin/mcp-servers/preview?url=${encodeURIComponent('http://169.254.169.254/mcp')}`,
    );
    expect(page.status).toBe(200);
    expect(page.body).toContain('data-testid="mcp-preview-problem"');
    const bad = await root.get(`${svc.url}/admin/mcp-servers/preview?url=not-a-url`);
    expect(bad.status).toBe(400);
  });

  it('saves with the CSRF token only, names bad fields, and users then see the server', async () => {
    const form = { url: peer.url, id: 'console-tools', name: 'Console tools' };
    expect((await root.post(`${svc.url}/admin/mcp-servers`, form)).status).toBe(403);
    const badId = await root.post(`${svc.url}/admin/mcp-servers`, { ...form, id: 'Bad Id', _csrf: csrf });
    expect(badId.status).toBe(400);
    expect(badId.body).toContain('body.id');
    expect(await mcpRows()).toEqual([]);

    const saved = await root.post(`${svc.url}/admin/mcp-servers`, { ...form, _csrf: csrf });
    expect(saved.status).toBe(303);
    expect(saved.headers.get('location')).toBe('/admin/mcp-servers?saved=console-tools');
    const list = await root.get(`${svc.url}/admin/mcp-servers?saved=console-tools`);
    expect(list.body).toContain('Saved console-tools: users can connect it now.');
    expect(list.body).toContain('<code>console-tools</code>');

    const integrations = (await (await svc.api('alice', '/api/v1/integrations')).json()) as Array<{
      id: string;
      kind: string;
      status: string;
    }>;
    expect(integrations.find((i) => i.id === 'console-tools')).toMatchObject({
      kind: 'mcp',
      status: 'not_connected',
    });
    const audit = await svc.service.ctx.store.db
      .selectFrom('audit_log')
      .select(['actor', 'data'])
      .where('action', '=', 'admin.integration_created')
      .execute();
    expect(audit).toEqual([{ actor: 'root', data: expect.stringContaining('"via":"console"') }]);

    const again = await root.post(`${svc.url}/admin/mcp-servers`, { ...form, _csrf: csrf });
    expect(again.status).toBe(400);
    expect(again.body).toContain('is already an integration or MCP server');
  });

  it('is for administrators only', async () => {
    const user = await signedInAgent(svc, 'alice');
    expect((await user.get(`${svc.url}/admin/mcp-servers`)).status).toBe(404);
    expect(
      (await user.get(`${svc.url}/admin/mcp-servers/preview?url=${encodeURIComponent(peer.url)}`)).status,
    ).toBe(404);
    const userCsrf = JSON.parse((await user.get(`${svc.url}/api/v1/me`)).body).csrfToken;
    const post = await user.post(`${svc.url}/admin/mcp-servers`, {
      url: peer.url,
      id: 'sneaky',
      name: 'Sneaky',
      _csrf: userCsrf,
    });
    expect(post.status).toBe(404);
    expect(await mcpRows()).toEqual([{ id: 'console-tools' }]);
  });
});
