import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { userIdPattern } from '../../identity/identity.js';
import { html } from '../../ui/html.js';
import { layout } from '../../ui/layout.js';
import { requireUser, setSessionCookie } from '../auth.js';
import type { AppContext } from '../context.js';
import { unauthenticated } from '../problem.js';
import { parseReturnTo } from '../return-to.js';
import { parseInput } from '../validate.js';

const sessionQuery = z.strictObject({ token: z.string().min(1).max(8192), return_to: z.string().optional() });
const devLoginForm = z.strictObject({
  name: z.string().trim().regex(userIdPattern, 'letters, digits and . _ @ : | + - only'),
  admin: z.literal('on').optional(),
  return_to: z.string().optional(),
});

/** `/session` (JWT → cookie), `/dev/login` (dev mode only) and `/logout`. @see contract §4 */
export function registerSessionRoutes(app: FastifyInstance, ctx: AppContext): void {
  const publicUrl = ctx.config.server.publicUrl;

  app.get('/session', async (request, reply) => {
    const q = parseInput(sessionQuery, request.query, 'query');
    const returnTo = parseReturnTo(q.return_to, publicUrl);
    request.headers.authorization = `Bearer ${q.token}`;
    const identity = await ctx.auth.identify(request);
    if (identity === undefined) throw unauthenticated('The token is invalid or expired.');
    const cookie = await ctx.sessions.start({
      userId: identity.userId,
      name: identity.name,
      role: identity.role === 'admin' ? 'admin' : null,
    });
    setSessionCookie(reply, ctx.auth, cookie, ctx.sessions.ttlSeconds);
    return reply.redirect(returnTo, 302);
  });

  app.post('/logout', async (request, reply) => {
    requireUser(request, publicUrl);
    const cookie = request.cookies[ctx.auth.cookieName];
    if (cookie !== undefined) await ctx.sessions.end(cookie);
    reply.clearCookie(ctx.auth.cookieName, { path: '/' });
    return reply.redirect(ctx.config.auth.mode === 'dev' ? '/dev/login' : '/', 303);
  });

  if (ctx.config.auth.mode !== 'dev') return;

  app.get('/dev/login', async (request, reply) => {
    const q = request.query as Record<string, unknown>;
    const returnTo = parseReturnTo(q.return_to, publicUrl);
    return reply.type('text/html; charset=utf-8').send(devLoginPage(returnTo).value);
  });

  app.post('/dev/login', async (request, reply) => {
    const form = parseInput(devLoginForm, request.body ?? {}, 'form');
    const returnTo = parseReturnTo(form.return_to, publicUrl);
    const cookie = await ctx.sessions.start({
      userId: form.name,
      name: form.name,
      role: form.admin === 'on' ? 'admin' : null,
    });
    await ctx.audit.record({ actor: form.name, action: 'session.started', data: { mode: 'dev' } });
    setSessionCookie(reply, ctx.auth, cookie, ctx.sessions.ttlSeconds);
    return reply.redirect(returnTo, 303);
  });
}

function devLoginPage(returnTo: string) {
  return layout({
    title: 'Sign in',
    body: html`<section class="narrow">
<h1>Sign in</h1>
<p class="lede">Development sign-in: type any user name. In production the nunq platform signs you in.</p>
<form method="post" action="/dev/login">
  <label for="name">User name</label>
  <input id="name" name="name" type="text" autocomplete="username" required autofocus pattern="[A-Za-z0-9._@:|+\\-]{1,200}">
  <label class="check"><input type="checkbox" name="admin"> Sign in as an administrator</label>
  <input type="hidden" name="return_to" value="${returnTo}">
  <p><button type="submit">Sign in</button></p>
</form>
</section>`,
  });
}
