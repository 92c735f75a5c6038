import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/databases.js';
import { startTestService, type TestService } from '../support/service.js';
import { signedInAgent, type UserAgent } from '../support/user-agent.js';

const secret = 'pasted-github-client-secret-0123456789';

/**
 * The console's providers page (issue 10, items 2 and 5): a provider added from a template by
 * pasting a client id and secret, with the template's suggested integrations; the secret is
 * sealed and never shown again, not even on a form sent back with errors.
 */
describe('the console adds a provider from a template', () => {
  let database: TestDatabase;
  let svc: TestService;
  let root: UserAgent;
  let csrf: string;

  beforeAll(async () => {
    database = await createTestDatabase('sqlite');
    svc = await startTestService({ database, admins: ['root'], serviceOptions: { background: false } });
    root = await signedInAgent(svc, 'root');
    csrf = JSON.parse((await root.get(`${svc.url}/api/v1/me`)).body).csrfToken;
  });

  afterAll(async () => {
    await svc?.close();
    await database?.drop();
  });

  it('lists the templates, and a template page says what to register and what is particular', async () => {
    const list = await root.get(`${svc.url}/admin/providers`);
    expect(list.status).toBe(200);
    expect(list.body).toContain('href="/admin/providers/new?template=github"');
    const page = await root.get(`${svc.url}/admin/providers/new?template=github`);
    expect(page.status).toBe(200);
    expect(page.body).toContain(`<code data-testid="redirect-uri">${svc.url}/oauth/callback</code>`);
    expect(page.body).toContain('data-testid="quirks"');
    expect((await root.get(`${svc.url}/admin/providers/new?template=nope`)).status).toBe(404);
  });

  it('names the fields at fault, never echoes the secret, and saves nothing', async () => {
    const bad = await root.post(`${svc.url}/admin/providers`, {
      _csrf: csrf,
      template: 'github',
      id: 'Not A Slug',
      clientId: '',
      clientSecret: secret,
      integrations: 'github',
    });
    expect(bad.status).toBe(400);
    expect(bad.body).toContain('form.id');
    expect(bad.body).toContain('form.clientId');
    expect(bad.body).not.toContain(secret);
    expect(await (await svc.api('root', '/api/v1/admin/providers')).json()).toEqual([]);
  });

  it('saves the provider and the ticked integrations with the CSRF token only; the secret stays write-only', async () => {
    const form = {
      template: 'github',
      id: 'gh',
      clientId: 'Iv1.abc',
      clientSecret: secret,
      integrations: 'github',
    };
    expect((await root.post(`${svc.url}/admin/providers`, form)).status).toBe(403);
    const saved = await root.post(`${svc.url}/admin/providers`, { ...form, _csrf: csrf });
    expect(saved.status).toBe(303);
    expect(saved.headers.get('location')).toBe('/admin/providers?saved=gh');
    const page = await root.get(`${svc.url}/admin/providers?saved=gh`);
    expect(page.body).toContain('Saved gh.');
    expect(page.body).toContain('set (write-only)');
    expect(page.body).not.toContain(secret);

    const providers = await (await svc.api('root', '/api/v1/admin/providers')).text();
    expect(providers).not.toContain(secret);
    expect(JSON.parse(providers)).toEqual([expect.objectContaining({ id: 'gh', source: 'admin' })]);
    const { clientSecret } = await svc.service.ctx.catalog.providerCredentials('gh');
    expect(clientSecret).toBe(secret);
    const integrations = (await (await svc.api('alice', '/api/v1/integrations')).json()) as Array<{
      id: string;
    }>;
    expect(integrations.map((i) => i.id)).toEqual(['github']);

    const again = await root.post(`${svc.url}/admin/providers`, { ...form, _csrf: csrf });
    expect(again.status).toBe(400);
    expect(again.body).toContain('is already a provider');
    expect(again.body).toContain('github is already an integration or MCP server');
  });

  it("takes a national cloud's sign-in authority for Entra, and names a bad one", async () => {
    const form = { _csrf: csrf, template: 'entra', id: 'gov', clientId: 'c-gov', clientSecret: secret };
    const page = await root.get(`${svc.url}/admin/providers/new?template=entra`);
    expect(page.body).toContain('name="authority"');
    const bad = await root.post(`${svc.url}/admin/providers`, { ...form, authority: 'not a url' });
    expect(bad.status).toBe(400);
    expect(bad.body).toContain('form.authority');
    expect(bad.body).not.toContain(secret);
    const saved = await root.post(`${svc.url}/admin/providers`, {
      ...form,
      authority: 'https://login.microsoftonline.us',
    });
    expect(saved.status).toBe(303);
    const provider = (await (await svc.api('root', '/api/v1/admin/providers/gov')).json()) as {
      authority?: string;
    };
    expect(provider.authority).toBe('https://login.microsoftonline.us');
  });

  it('is for administrators only', async () => {
    const user = await signedInAgent(svc, 'alice');
    expect((await user.get(`${svc.url}/admin/providers`)).status).toBe(404);
    const userCsrf = JSON.parse((await user.get(`${svc.url}/api/v1/me`)).body).csrfToken;
    const post = await user.post(`${svc.url}/admin/providers`, {
      _csrf: userCsrf,
      template: 'google',
      id: 'sneaky',
      clientId: 'x',
      clientSecret: 'y',
    });
    expect(post.status).toBe(404);
    expect((await svc.service.ctx.catalog.getProvider('sneaky')) === undefined).toBe(true);
  });
});
