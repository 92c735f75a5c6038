import type { Identity } from '../../identity/identity.js';
import { html, type SafeHtml } from '../html.js';
import { layout } from '../layout.js';
import { userLabel } from './switch-account.js';

/**
 * Where a link to `/connect/:id` lands: it names the signed-in user and the integration, and
 * only its button (a POST with the session's CSRF token) starts the flow. A link from
 * elsewhere, or a sign-in hand-off's `return_to`, can therefore never start one by itself.
 */
export function connectConfirmPage(options: {
  identity: Identity;
  integration: { id: string; name: string };
  /** True when the user already has a connection for it (the button reconnects it). */
  reconnect: boolean;
  returnTo: string;
  /** The MCP gateway's elicitation this Connect answers (opaque; carried to the POST). */
  elicitation?: string | undefined;
  /** Opened as the host platform's popup: the flow ends at the page that tells the opener. */
  popup?: boolean;
}): SafeHtml {
  const { identity, integration } = options;
  const verb = options.reconnect ? 'Reconnect' : 'Connect';
  return layout({
    title: `${verb} ${integration.name}?`,
    identity,
    body: html`<section class="narrow">
<h1>${verb} ${integration.name}?</h1>
<p data-testid="confirm-user">You are signed in as ${userLabel(identity)}.</p>
<p data-testid="confirm-integration">${verb}ing <strong>${integration.name}</strong> sends you to its sign-in page. The account you sign in with there will be usable by nunq for ${identity.name ?? identity.userId}.</p>
<p class="muted">If this is not you, or you did not ask for this, do not continue: sign out and open nunq connect from the nunq platform.</p>
<form method="post" action="/connect/${integration.id}" class="inline">
  <input type="hidden" name="_csrf" value="${identity.csrfToken ?? ''}">
  <input type="hidden" name="return_to" value="${options.returnTo}">
  ${options.elicitation === undefined ? '' : html`<input type="hidden" name="elicitation" value="${options.elicitation}">`}
  ${options.popup === true ? html`<input type="hidden" name="display" value="popup">` : ''}
  <button type="submit" data-testid="confirm-connect">${verb}</button>
</form>
<a class="button secondary" href="${options.popup === true ? `/embed/done?integration=${integration.id}&outcome=cancelled` : '/'}" data-testid="confirm-cancel">Cancel</a>
</section>`,
  });
}
