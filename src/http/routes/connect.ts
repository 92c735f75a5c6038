import type { FastifyInstance, FastifyReply } from 'fastify';
import {
  CallbackRejectedError,
  type CompletedOutcome,
  callbackPath,
  offeredIntegration,
  parkedFlowPath,
} from '../../connections/authorization-flow.js';
import { clientMetadataDocument } from '../../oauth/mcp/client-identity.js';
import { html } from '../../ui/html.js';
import { layout } from '../../ui/layout.js';
import { connectConfirmPage } from '../../ui/pages/connect-confirm.js';
import { requireUser } from '../auth.js';
import type { AppContext } from '../context.js';
import { documented, parseRequest, withSpec } from '../openapi/route-spec.js';
import { Problem } from '../problem.js';
import { parseReturnTo } from '../return-to.js';
import {
  accountConfirm,
  accountConfirmPage,
  clientMetadata,
  connectForm,
  connectPage,
  oauthCallback,
} from './connect-specs.js';
import { popupDonePath } from './embed.js';
import { signInRedirect } from './pages.js';

/**
 * Appends the outcome of a flow to the `return_to` path: `?outcome=connected&connection=<id>`;
 * a failure the user can act on also names its reason and integration (`reason=wrong_tenant`).
 */
export function withOutcome(
  returnTo: string,
  outcome: Exclude<CompletedOutcome['outcome'], 'confirm' | 'confirm_browser'> | 'disconnected' | 'cancelled',
  connectionId?: string,
  failure?: { reason: 'wrong_tenant'; integration: string },
): string {
  const url = new URL(returnTo, 'http://x');
  url.searchParams.set('outcome', outcome);
  if (connectionId !== undefined) url.searchParams.set('connection', connectionId);
  if (failure !== undefined) {
    url.searchParams.set('reason', failure.reason);
    url.searchParams.set('integration', failure.integration);
  }
  return `${url.pathname}${url.search}${url.hash}`;
}

const rejectionText: Record<CallbackRejectedError['reason'], string> = {
  missing_state: 'This sign-in response is incomplete, so it cannot be used.',
  unknown: 'This sign-in response does not belong to a sign-in started here.',
  foreign: 'This sign-in response does not belong to a sign-in started here.',
  expired: 'This sign-in took longer than 10 minutes, so it expired.',
  used: 'This sign-in response was already used.',
};

/**
 * The browser side of the flow: `GET /connect/:integrationId` (a confirmation page),
 * `POST /connect/:integrationId` (its button: 303 to the provider) and `GET /oauth/callback`
 * (finish, then 302 to `return_to` with the outcome).
 */
export function registerConnectRoutes(app: FastifyInstance, ctx: AppContext): void {
  const publicUrl = ctx.config.server.publicUrl;

  // Our Client ID Metadata Document: MCP authorization servers that support CIMD fetch it, and
  // its URL is our client_id there. Public: it holds nothing secret. Served even where another
  // URL is configured (`mcp.clientMetadataUrl`), whose document names that URL instead.
  const metadataJson = JSON.stringify(
    clientMetadataDocument({
      publicUrl,
      ...(ctx.config.mcp.clientMetadataUrl === undefined
        ? {}
        : { clientMetadataUrl: ctx.config.mcp.clientMetadataUrl }),
      redirectUri: `${publicUrl}${callbackPath}`,
    }),
  );
  app.route(
    documented(clientMetadata, async (_request, reply) =>
      reply.type('application/json').header('cache-control', 'public, max-age=300').send(metadataJson),
    ),
  );

  // A GET (a link, a redirect, a hand-off's return_to) only shows what would happen; the flow
  // starts from the page's POST, which needs the session's CSRF token. @see contract §4
  app.get(connectPage.url, withSpec(connectPage), async (request, reply) => {
    if (request.identity === undefined) return signInRedirect(ctx, request, reply);
    const identity = requireUser(request, publicUrl);
    const { params, query } = parseRequest(connectPage, request);
    const { integrationId } = params;
    const { return_to, elicitation } = query;
    const popup = query.display === 'popup';
    if (popup && ctx.config.server.embedOrigins.length === 0) return embeddingOff(reply);
    const returnTo = parseReturnTo(return_to, publicUrl);
    // Not offered: missing, disabled, or limited to groups the user is in none of.
    const integration = await offeredIntegration(ctx.catalog, integrationId, identity.groups, 'not_found');
    if (
      elicitation !== undefined &&
      (await findElicitation(ctx, elicitation, identity.userId, integrationId)) === undefined
    ) {
      return errorPage(
        reply,
        404,
        'This link expired',
        'This request to connect expired or belongs to someone else. Ask the agent again.',
      );
    }
    const existing = await ctx.connections.findByUserAndIntegration(identity.userId, integrationId);
    return reply.type('text/html; charset=utf-8').send(
      connectConfirmPage({
        identity,
        integration,
        reconnect: existing !== undefined,
        returnTo,
        elicitation,
        popup,
      }).value,
    );
  });

  app.post(connectForm.url, withSpec(connectForm), async (request, reply) => {
    const identity = requireUser(request, publicUrl);
    const { params, body: form } = parseRequest(connectForm, request);
    const { integrationId } = params;
    const popup = form.display === 'popup';
    if (popup && ctx.config.server.embedOrigins.length === 0) return embeddingOff(reply);
    // A popup ends at the page that tells its opener (its own return_to is not used).
    const returnTo = popup
      ? `${popupDonePath}?integration=${integrationId}`
      : parseReturnTo(form.return_to, publicUrl);
    const elicitation =
      form.elicitation === undefined
        ? undefined
        : await findElicitation(ctx, form.elicitation, identity.userId, integrationId);
    if (form.elicitation !== undefined && elicitation === undefined) {
      return errorPage(
        reply,
        404,
        'This link expired',
        'This request to connect expired or belongs to someone else. Ask the agent again.',
      );
    }
    const existing = await ctx.connections.findByUserAndIntegration(identity.userId, integrationId);
    let url: URL;
    try {
      url = await ctx.flow.start({
        userId: identity.userId,
        integrationId,
        returnTo,
        ...(existing === undefined ? {} : { connectionId: existing.id }),
        browserBinding: identity.browserBinding ?? null,
        groups: identity.groups,
        ...(elicitation === undefined
          ? {}
          : {
              elicitationId: form.elicitation,
              ...(elicitation.scopes === null ? {} : { scopes: elicitation.scopes }),
            }),
      });
    } catch (error) {
      // A person clicked a button: show a page naming the problem (an API client gets problem+json).
      const wantsPage = (request.headers.accept ?? '').includes('text/html');
      if (!wantsPage || !(error instanceof Problem) || error.status < 500) throw error;
      return errorPage(
        reply,
        error.status,
        'This cannot be connected right now',
        error.detail ?? error.title,
      );
    }
    return reply.redirect(url.href, 303);
  });

  app.get(accountConfirmPage.url, withSpec(accountConfirmPage), async (request, reply) => {
    if (request.identity === undefined) return signInRedirect(ctx, request, reply);
    const identity = requireUser(request, publicUrl);
    const { confirmationId } = parseRequest(accountConfirmPage, request).params;
    const pending = await ctx.flow.confirmations.pendingAccount(identity.userId, confirmationId);
    if (pending === undefined) {
      return errorPage(reply, 404, 'Nothing to confirm', 'This request expired or was already answered.');
    }
    const who = (a: { id?: string; name?: string; email?: string }) =>
      a.name ?? a.email ?? a.id ?? 'an unknown account';
    // The provider may not say who signed in (no ID token, userinfo failed): ask all the same.
    const signedInAs =
      pending.newAccount.id === undefined
        ? html`We could not tell which account you signed in with, and this connection was made as <strong>${who(pending.currentAccount)}</strong>.`
        : html`You signed in as <strong>${who(pending.newAccount)}</strong>, but this connection was made as <strong>${who(pending.currentAccount)}</strong>.`;
    const useNew =
      pending.newAccount.id === undefined ? 'Use the new sign-in' : `Use ${who(pending.newAccount)}`;
    return reply.type('text/html; charset=utf-8').send(
      layout({
        title: 'Replace the account?',
        identity,
        body: html`<section class="narrow">
<h1>Replace the connected account?</h1>
<p data-testid="confirm-text">${signedInAs}</p>
<form method="post" action="/connections/${pending.connectionId}/confirm/${pending.id}" class="inline">
  <input type="hidden" name="_csrf" value="${identity.csrfToken ?? ''}">
  <button type="submit" name="decision" value="replace" data-testid="confirm-replace">${useNew}</button>
  <button type="submit" name="decision" value="keep" class="secondary" data-testid="confirm-keep">Keep ${who(pending.currentAccount)}</button>
</form>
</section>`,
      }).value,
    );
  });

  app.post(accountConfirm.url, withSpec(accountConfirm), async (request, reply) => {
    const identity = requireUser(request, publicUrl);
    const { params, body } = parseRequest(accountConfirm, request);
    const { confirmationId } = params;
    const { decision } = body;
    const result = await ctx.flow.confirmations.resolveAccount(identity.userId, confirmationId, decision);
    if (result === undefined) {
      return errorPage(reply, 404, 'Nothing to confirm', 'This request expired or was already answered.');
    }
    if (result.outcome === 'confirm' || result.outcome === 'confirm_browser') {
      throw new Error('unreachable: a confirmed save never asks again');
    }
    if (!('connectionId' in result)) return reply.redirect(result.returnTo, 303);
    return reply.redirect(withOutcome(result.returnTo, result.outcome, result.connectionId), 303);
  });

  app.get(oauthCallback.url, withSpec(oauthCallback), async (request, reply) => {
    if (request.identity === undefined) {
      return errorPage(
        reply,
        401,
        'Please sign in again',
        'Your session ended before the sign-in finished. Sign in and connect again.',
      );
    }
    const identity = request.identity;
    const callbackUrl = new URL(request.url, publicUrl);
    try {
      const result = await ctx.flow.complete({
        userId: identity.userId,
        callbackUrl,
        browserBinding: identity.browserBinding,
      });
      request.log.info(
        { outcome: result.outcome, integration: result.integrationId },
        'authorization finished',
      );
      if (result.outcome === 'confirm') {
        return reply.redirect(`/connections/${result.connectionId}/confirm/${result.confirmationId}`, 302);
      }
      if (result.outcome === 'confirm_browser') {
        return reply.redirect(`${parkedFlowPath}/${result.confirmationId}`, 302);
      }
      return reply.redirect(
        withOutcome(
          result.returnTo,
          result.outcome,
          'connectionId' in result ? result.connectionId : undefined,
          result.outcome === 'failed' && result.reason === 'wrong_tenant'
            ? { reason: 'wrong_tenant', integration: result.integrationId }
            : undefined,
        ),
        302,
      );
    } catch (error) {
      if (error instanceof CallbackRejectedError) {
        request.log.warn({ reason: error.reason }, 'callback rejected');
        return errorPage(reply, 400, 'This sign-in cannot be completed', rejectionText[error.reason]);
      }
      throw error;
    }
  });
}

/** `display=popup` while no origin may embed the service: nothing could receive the outcome. */
function embeddingOff(reply: FastifyReply): FastifyReply {
  return errorPage(
    reply,
    404,
    'Embedding is not enabled',
    'This service does not accept Connect from another site (server.embedOrigins is empty).',
  );
}

/** The user's unexpired elicitation for this integration; another user's or integration's is absent. */
async function findElicitation(ctx: AppContext, id: string, userId: string, integrationId: string) {
  const found = await ctx.flow.elicitations?.find(id, userId);
  return found?.integrationId === integrationId ? found : undefined;
}

/** Shows an HTML page saying nothing was changed (a refused callback or confirmation). */
export function errorPage(reply: FastifyReply, status: number, title: string, text: string): FastifyReply {
  return reply
    .code(status)
    .type('text/html; charset=utf-8')
    .send(
      layout({
        title,
        body: html`<section class="narrow"><h1>${title}</h1><p data-testid="error-text">${text}</p>
<p>Nothing was changed. <a class="button" href="/">Back to your integrations</a></p></section>`,
      }).value,
    );
}
