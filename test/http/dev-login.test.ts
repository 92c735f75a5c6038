import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, databaseKinds, type TestDatabase } from '../support/databases.js';
import { startTestService, type TestService } from '../support/service.js';

async function expectProblem(res: Response, status: number, code: string): Promise<Record<string, unknown>> {
  const text = await res.text();
  expect({ status: res.status, text }).toMatchObject({ status });
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const body = JSON.parse(text) as Record<string, unknown>;
  expect(body).toMatchObject({ status, code, title: expect.any(String), type: expect.any(String) });
  return body;
}

const loginForm = (fields: Record<string, string>) => ({
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams(fields),
  redirect: 'manual' as const,
});

describe.each(databaseKinds)('dev sign-in on %s', (kind) => {
  let database: TestDatabase;
  let dev: TestService;
  let jwt: TestService;

  beforeAll(async () => {
    database = await createTestDatabase(kind);
    dev = await startTestService({ database, authMode: 'dev', admins: ['root'] });
    // A second instance on the same database, in jwt mode.
    jwt = await startTestService({ database, authMode: 'jwt' });
  });
  afterAll(async () => {
    await dev?.close();
    await jwt?.close();
    await database?.drop();
  });

  it('renders a labelled sign-in form that posts back with the return_to', async () => {
    const res = await fetch(`${dev.url}/dev/login?return_to=${encodeURIComponent('/x?y=1')}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const page = await res.text();
    expect(page).toMatch(/<form method="post" action="\/dev\/login">/);
    expect(page).toMatch(/<label for="name">User name<\/label>/);
    expect(page).toMatch(/<input id="name" name="name" [^>]*required/);
    expect(page).toMatch(/<input type="hidden" name="return_to" value="\/x\?y=1">/);
    expect(page).toMatch(/<button type="submit">Sign in<\/button>/);
  });

  it('escapes the return_to it renders', async () => {
    const res = await fetch(`${dev.url}/dev/login?return_to=${encodeURIComponent('/a"><script>x</script>')}`);
    const page = await res.text();
    expect(page).not.toContain('<script>x</script>');
    expect(page).not.toContain('"><script>');
  });

  it('refuses an off-origin return_to on the form page', async () => {
    await expectProblem(
      await fetch(`${dev.url}/dev/login?return_to=${encodeURIComponent('//evil.example')}`),
      400,
      'return_to_invalid',
    );
  });

  it('signs in: sets the session cookie and 303s to return_to', async () => {
    const res = await fetch(`${dev.url}/dev/login`, loginForm({ name: 'dana', return_to: '/somewhere' }));
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/somewhere');
    const [setCookie] = res.headers.getSetCookie();
    expect(setCookie).toMatch(/^nunq_session=[A-Za-z0-9_-]{43};/);
    expect(setCookie!.toLowerCase()).toContain('httponly');
    expect(setCookie!.toLowerCase()).toContain('samesite=lax');
    const cookie = setCookie!.split(';')[0]!;
    const me = await fetch(`${dev.url}/api/v1/me`, { headers: { cookie } });
    expect(me.status).toBe(200);
    expect(await me.json()).toMatchObject({ id: 'dana', name: 'dana', role: 'user' });
    // The page now shows who is signed in.
    const home = await fetch(`${dev.url}/`, { headers: { cookie } });
    expect(home.status).toBe(200);
    expect(await home.text()).toContain('data-testid="signed-in-as">dana<');
  });

  it('defaults return_to to / and grants admin by the checkbox or auth.admins', async () => {
    const asAdmin = await fetch(`${dev.url}/dev/login`, loginForm({ name: 'erin', admin: 'on' }));
    expect(asAdmin.status).toBe(303);
    expect(asAdmin.headers.get('location')).toBe('/');
    const cookie = asAdmin.headers.getSetCookie()[0]!.split(';')[0]!;
    expect(await (await fetch(`${dev.url}/api/v1/me`, { headers: { cookie } })).json()).toMatchObject({
      role: 'admin',
    });
    const listed = await fetch(`${dev.url}/dev/login`, loginForm({ name: 'root' }));
    const rootCookie = listed.headers.getSetCookie()[0]!.split(';')[0]!;
    expect(
      await (await fetch(`${dev.url}/api/v1/me`, { headers: { cookie: rootCookie } })).json(),
    ).toMatchObject({ role: 'admin' });
  });

  it('refuses invalid names with 400 and sets no cookie', async () => {
    for (const name of ['', '   ', 'has space', 'a/b', '<script>', 'x'.repeat(201)]) {
      const res = await fetch(`${dev.url}/dev/login`, loginForm({ name, return_to: '/' }));
      await expectProblem(res, 400, 'validation_failed');
      expect(res.headers.getSetCookie(), name).toEqual([]);
    }
    const missing = await fetch(`${dev.url}/dev/login`, loginForm({ return_to: '/' }));
    await expectProblem(missing, 400, 'validation_failed');
  });

  it('refuses an off-origin return_to on sign-in and sets no cookie', async () => {
    for (const target of ['https://evil.example', '//evil.example', '/\\evil.example']) {
      const res = await fetch(`${dev.url}/dev/login`, loginForm({ name: 'frank', return_to: target }));
      await expectProblem(res, 400, 'return_to_invalid');
      expect(res.headers.getSetCookie()).toEqual([]);
    }
  });

  it('never redirects off-site after sign-in, even through dot segments', async () => {
    for (const target of ['/.//evil.example', '/a/..//evil.example']) {
      const res = await fetch(`${dev.url}/dev/login`, loginForm({ name: 'grace', return_to: target }));
      expect([303, 400], target).toContain(res.status);
      const location = res.headers.get('location');
      if (location === null) continue;
      expect(location.startsWith('//'), `${target} -> ${location}`).toBe(false);
      expect(new URL(location, dev.url).origin, `${target} -> ${location}`).toBe(dev.url);
    }
  });

  it('sends an anonymous browser from / to /dev/login', async () => {
    const res = await fetch(`${dev.url}/`, { redirect: 'manual' });
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('/dev/login?return_to=%2F');
  });

  it('does not exist in jwt mode', async () => {
    await expectProblem(await fetch(`${jwt.url}/dev/login`), 404, 'not_found');
    const post = await fetch(`${jwt.url}/dev/login`, loginForm({ name: 'mallory', admin: 'on' }));
    await expectProblem(post, 404, 'not_found');
    expect(post.headers.getSetCookie()).toEqual([]);
  });
  it('takes optional groups (comma-separated), so an integration limited to groups can be tried in demo mode', async () => {
    const asRoot = (path: string, body: unknown) =>
      dev.api('root', path, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    expect(
      (
        await asRoot('/api/v1/admin/providers', {
          id: 'grp',
          type: 'oauth2',
          authorizationEndpoint: 'https://p.example/authorize',
          tokenEndpoint: 'https://p.example/token',
          clientId: 'nunq',
        })
      ).status,
    ).toBe(201);
    expect(
      (
        await asRoot('/api/v1/admin/integrations', {
          id: 'finance-only',
          name: 'Finance only',
          provider: 'grp',
          groups: ['finance'],
        })
      ).status,
    ).toBe(201);
    const page = await (await fetch(`${dev.url}/dev/login`)).text();
    expect(page).toMatch(/<label for="groups">Groups \(optional, separated by commas\)<\/label>/);
    const signIn = async (fields: Record<string, string>) => {
      const res = await fetch(`${dev.url}/dev/login`, loginForm({ return_to: '/', ...fields }));
      expect(res.status).toBe(303);
      return res.headers.getSetCookie()[0]!.split(';')[0]!;
    };
    const member = await signIn({ name: 'gina', groups: ' sales , finance ,' });
    const outsider = await signIn({ name: 'otto', groups: '' });
    const ids = async (cookie: string) =>
      (
        (await (await fetch(`${dev.url}/api/v1/integrations`, { headers: { cookie } })).json()) as Array<{
          id: string;
        }>
      ).map((i) => i.id);
    expect(await ids(member)).toContain('finance-only');
    expect(await ids(outsider)).not.toContain('finance-only');
    expect((await fetch(`${dev.url}/connect/finance-only`, { headers: { cookie: member } })).status).toBe(
      200,
    );
    expect((await fetch(`${dev.url}/connect/finance-only`, { headers: { cookie: outsider } })).status).toBe(
      404,
    );
  });
});
