import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { HandOffRefusedError } from '../../identity/hand-off.js';
import { groupsFromClaim, isAdmin, userIdPattern } from '../../identity/identity.js';
import type { PlatformClaims } from '../../identity/jwt.js';
import { html } from '../../ui/html.js';
import { layout } from '../../ui/layout.js';
import { switchAccountPage } from '../../ui/pages/switch-account.js';
import { requireUser, setSessionCookie } from '../auth.js';
import type { AppContext } from '../context.js';
import { defineRoute, parseRequest, problem, withSpec } from '../openapi/route-spec.js';
import { Problem, unauthenticated } from '../problem.js';
import { parseReturnTo } from '../return-to.js';

const returnTo = z.string().optional().describe('A same-origin path to go to afterwards (default `/`)');
const handOffToken = z
  .string()
  .min(1)
  .max(8192)
  .describe('The platform’s JWT (accepted once if it has a `jti`)');

const startSession = defineRoute({
  method: 'GET',
  url: '/session',
  operationId: 'startSession',
  summary: 'Exchange the platform’s JWT for a session cookie, then 302 to `return_to`',
  description:
    'When another user is signed in in this browser, a page asks before switching (never silently).',
  tags: ['Session'],
  auth: 'none',
  query: z.strictObject({ token: handOffToken, return_to: returnTo }),
  responses: {
    200: { description: 'The “switch account?” page', contentType: 'text/html' },
    302: {
      description: 'Signed in',
      headers: { location: '`return_to`', 'set-cookie': 'The session cookie' },
    },
    400: problem('validation_failed or return_to_invalid'),
    401: problem('unauthenticated (invalid or expired token) or hand_off_used'),
  },
});

const switchSession = defineRoute({
  method: 'POST',
  url: '/session',
  operationId: 'switchSession',
  summary: '“Continue as …” on the switch page: replace the current session',
  tags: ['Session'],
  auth: 'session',
  bodyType: 'form',
  body: z.strictObject({ token: handOffToken, return_to: returnTo, _csrf: z.string().optional() }),
  responses: { 303: { description: 'Signed in as the new user', headers: { location: '`return_to`' } } },
});

const logout = defineRoute({
  method: 'POST',
  url: '/logout',
  operationId: 'logout',
  summary: 'End the session',
  tags: ['Session'],
  auth: 'session',
  bodyType: 'form',
  body: z.object({ _csrf: z.string().optional() }),
  responses: { 303: { description: 'Signed out' } },
});

const devLoginPageRoute = defineRoute({
  method: 'GET',
  url: '/dev/login',
  operationId: 'devLoginPage',
  summary: 'Development sign-in page (`auth.mode: dev` only)',
  tags: ['Session'],
  auth: 'none',
  query: z.object({ return_to: returnTo }),
  responses: { 200: { description: 'HTML page', contentType: 'text/html' } },
});

const devLogin = defineRoute({
  method: 'POST',
  url: '/dev/login',
  operationId: 'devLogin',
  summary: 'Development sign-in: any user name (`auth.mode: dev` only)',
  tags: ['Session'],
  auth: 'none',
  bodyType: 'form',
  body: z.strictObject({
    name: z.string().trim().regex(userIdPattern, 'letters, digits and . _ @ : | + - only'),
    admin: z.literal('on').optional(),
    groups: z
      .string()
      .max(4000)
      .optional()
      .describe('Groups, separated by commas (what `auth.groupsClaim` carries in jwt mode)'),
    return_to: returnTo,
  }),
  responses: { 303: { description: 'Signed in', headers: { location: '`return_to`' } } },
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
  const begin = async (reply: FastifyReply, claims: PlatformClaims, switched: boolean) => {
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
  app.get(startSession.url, withSpec(startSession), async (request, reply) => {
    const { query: q } = parseRequest(startSession, request);
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
    if (current === undefined) await begin(reply, claims, false);
    return reply.redirect(returnTo, 302);
  });

  // "Continue as …" on the switch page: a POST with the current session's CSRF token.
  app.post(switchSession.url, withSpec(switchSession), async (request, reply) => {
    requireUser(request, publicUrl);
    const { body: form } = parseRequest(switchSession, request);
    const returnTo = parseReturnTo(form.return_to, publicUrl);
    const claims = await verify(form.token);
    await redeem(claims);
    const old = request.cookies[ctx.auth.cookieName];
    if (old !== undefined) await ctx.sessions.end(old);
    await begin(reply, claims, true);
    return reply.redirect(returnTo, 303);
  });

  app.post(logout.url, withSpec(logout), async (request, reply) => {
    requireUser(request, publicUrl);
    const cookie = request.cookies[ctx.auth.cookieName];
    if (cookie !== undefined) await ctx.sessions.end(cookie);
    reply.clearCookie(ctx.auth.cookieName, { path: '/' });
    return reply.redirect(ctx.config.auth.mode === 'dev' ? '/dev/login' : '/', 303);
  });

  if (ctx.config.auth.mode !== 'dev') return;

  app.get(devLoginPageRoute.url, withSpec(devLoginPageRoute), async (request, reply) => {
    const q = request.query as Record<string, unknown>;
    const returnTo = parseReturnTo(q.return_to, publicUrl);
    return reply.type('text/html; charset=utf-8').send(devLoginPage(returnTo).value);
  });

  app.post(devLogin.url, withSpec(devLogin), async (request, reply) => {
    const { body: form } = parseRequest(devLogin, request);
    const returnTo = parseReturnTo(form.return_to, publicUrl);
    const cookie = await ctx.sessions.start({
      userId: form.name,
      name: form.name,
      role: form.admin === 'on' ? 'admin' : null,
      // Groups typed here stand for the JWT's groups claim, so an integration's `groups` can be
      // tried in demo mode; bounded as a claim is.
      groups: groupsFromClaim((form.groups ?? '').split(',').map((g) => g.trim())),
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
  <label for="groups">Groups (optional, separated by commas)</label>
  <input id="groups" name="groups" type="text" autocomplete="off" aria-describedby="groups-hint">
  <p class="muted hint" id="groups-hint">As the platform's token would carry them: integrations limited to groups are offered only to their members.</p>
  <label class="check"><input type="checkbox" name="admin"> Sign in as an administrator</label>
  <input type="hidden" name="return_to" value="${returnTo}">
  <p><button type="submit">Sign in</button></p>
</form>
</section>`,
  });
}
