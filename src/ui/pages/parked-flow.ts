import type { Identity } from '../../identity/identity.js';
import type { AccountIdentity } from '../../oauth/token-set.js';
import { html, type SafeHtml } from '../html.js';
import { layout } from '../layout.js';
import { userLabel } from './switch-account.js';

/**
 * Where a flow lands that finished in a browser that did not start it (started through the API,
 * or in another browser or session): it names the nunq user the connection will belong to, the
 * integration and the provider account, and only its Connect button (a POST with the session's
 * CSRF token) stores anything. Cancel discards the waiting tokens. Never shows a code or token.
 */
export function parkedFlowPage(options: {
  identity: Identity;
  id: string;
  integration: { id: string; name: string };
  reconnect: boolean;
  account: AccountIdentity;
}): SafeHtml {
  const { identity, integration, account } = options;
  const verb = options.reconnect ? 'Reconnect' : 'Connect';
  const accountName = account.name ?? account.email ?? account.id;
  const accountText =
    accountName === undefined
      ? html`The provider did not say which account you signed in with.`
      : html`You signed in to ${integration.name} as <strong>${accountName}</strong>${
          account.email !== undefined && account.email !== accountName ? html` (${account.email})` : ''
        }.`;
  return layout({
    title: `Finish connecting ${integration.name}?`,
    identity,
    body: html`<section class="narrow">
<h1>Finish connecting ${integration.name}?</h1>
<p data-testid="parked-user">This connection will belong to the nunq user ${userLabel(identity)}.</p>
<p data-testid="parked-account">${accountText}</p>
<p data-testid="parked-why">This sign-in was not started in this browser (it was started through the nunq API, or in another browser). Connect only if you started it yourself and you are ${identity.name ?? identity.userId}: whoever this nunq user is can then use your ${integration.name} account.</p>
<form method="post" action="/oauth/confirm/${options.id}" class="inline">
  <input type="hidden" name="_csrf" value="${identity.csrfToken ?? ''}">
  <button type="submit" name="decision" value="connect" data-testid="parked-connect">${verb} ${integration.name}</button>
  <button type="submit" name="decision" value="cancel" class="secondary" data-testid="parked-cancel">Cancel</button>
</form>
<p class="muted">Nothing is stored until you choose; this request expires in 10 minutes.</p>
</section>`,
  });
}
