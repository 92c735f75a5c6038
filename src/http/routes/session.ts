import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { HandOffRefusedError } from '../../identity/hand-off.js';
import { isAdmin, userIdPattern } from '../../identity/identity.js';
import type { PlatformClaims } from '../../identity/jwt.js';
import { html } from '../../ui/html.js';
import { layout } from '../../ui/layout.js';
import { switchAccountPage } from '../../ui/pages/switch-account.js';
import { requireUser, setSessionCookie } from '../auth.js';
import type { AppContext } from '../context.js';
import { Problem, unauthenticated } from '../problem.js';
import { parseReturnTo } from '../return-to.js';
import { parseInput } from '../validate.js';

const sessionQuery = z.strictObject({ token: z.string().min(1).max(8192), return_to: z.string().optional() });
const switchForm = z.strictObject({
  token: z.string().min(1).max(8192),
  return_to: z.string().optional(),
  _csrf: z.string().optional(),
});
const devLoginForm = z.strictObject({
  name: z.string().trim().regex(userIdPattern, 'letters, digits and . _ @ : | + - only'),
  admin: z.literal('on').optional(),
  return_to: z.string().optional(),
});

/**
 * `/session` (the platform's JWT hand-off → cookie; asks before switching users), `/dev/login`
 * (dev mode only) and `/logout`. @see contract §4
 */
export function registerSessionRoutes(app: FastifyInstance, ctx: AppContext): void {
  const publicUrl = ctx.config.server.publicUrl;

  const handOffProblem = (error: unknown): unknown => {
    if (!(error instanceof HandOffRefusedError)) return error;
    return error.reason === 'used'
      ? new Problem(
          401,
          'hand_off_used',
          'Unauthorized',
          'This sign-in link was already used. Open nunq connect from the nunq platform again.',
        )
      : unauthenticated(
          'The sign-in token is invalid or expired. Open nunq connect from the nunq platform again.',
        );
  };
  const verify = (token: string) =>
    ctx.handOff.verify(token).catch((error: unknown) => {
      throw handOffProblem(error);
    });
  const redeem = (claims: PlatformClaims) =>
    ctx.handOff.redeem(claims).catch((error: unknown) => {
      throw handOffProblem(error);
    });
  const startSession = async (reply: FastifyReply, claims: PlatformClaims, switched: boolean) => {
    const cookie = await ctx.sessions.start({
      userId: claims.sub,
      name: claims.name,
      role: isAdmin(claims.sub, claims.role, ctx.config.auth.admins) ? 'admin' : null,
      groups: claims.groups,
    });
    await ctx.audit.record({ actor: claims.sub, action: 'session.started', data: { mode: 'jwt', switched } });
    setSessionCookie(reply, ctx.auth, cookie, ctx.sessions.ttlSeconds);
  };

  // The hand-off never replaces another user's session silently: that is login CSRF, and a
  // victim signed in as the attacker would connect their accounts into the attacker's.
  app.get('/session', async (request, reply) => {
    const q = parseInput(sessionQuery, request.query, 'query');
    const returnTo = parseReturnTo(q.return_to, publicUrl);
    const claims = await verify(q.token);
    const current = request.identity?.via === 'session' ? request.identity : undefined;
    if (current !== undefined && current.userId !== claims.sub) {
      if (await ctx.handOff.wasUsed(claims)) throw handOffProblem(new HandOffRefusedError('used'));
      return reply.type('text/html; charset=utf-8').send(
        switchAccountPage({
          current,
          next: { userId: claims.sub, name: claims.name },
          token: q.token,
          returnTo,
        }).value,
      );
    }
    await redeem(claims);
    // The same user already signed in keeps the session (and the CSRF token of open pages).
    if (current === undefined) await startSession(reply, claims, false);
    return reply.redirect(returnTo, 302);
  });

  // "Continue as …" on the switch page: a POST with the current session's CSRF token.
  app.post('/session', async (request, reply) => {
    requireUser(request, publicUrl);
    const form = parseInput(switchForm, request.body ?? {}, 'form');
    const returnTo = parseReturnTo(form.return_to, publicUrl);
    const claims = await verify(form.token);
    await redeem(claims);
    const old = request.cookies[ctx.auth.cookieName];
    if (old !== undefined) await ctx.sessions.end(old);
    await startSession(reply, claims, true);
    return reply.redirect(returnTo, 303);
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
