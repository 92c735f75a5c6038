import type { UserIntegration } from '../../connections/integration-status.js';
import type { Identity } from '../../identity/identity.js';
import { html, type SafeHtml } from '../html.js';
import { layout, type PageOptions } from '../layout.js';

export interface NotificationItem {
  id: string;
  type: string;
  text: string;
  connectionId: string | null;
}

const statusText: Record<UserIntegration['status'], string> = {
  not_connected: 'Not connected',
  active: 'Connected',
  needs_reauth: 'Needs reconnecting',
};

/**
 * The Integrations page: every integration, its status, and what the user can do about it. Its
 * Connect, Reconnect and Disconnect buttons are form posts with the CSRF token: a click on our
 * own page is the explicit action that starts a flow (links from elsewhere get a confirm page).
 */
export function integrationsPage(options: {
  identity: Identity;
  integrations: UserIntegration[];
  notifications: NotificationItem[];
  /** An MCP server's last discovery problem, by integration id: shown on its card as is. */
  problems?: ReadonlyMap<string, string>;
  flash?: PageOptions['flash'];
}): SafeHtml {
  const { identity, integrations, notifications } = options;
  const csrf = identity.csrfToken ?? '';
  return layout({
    title: 'Integrations',
    identity,
    flash: options.flash,
    body: html`
${notifications.map(
  (n) => html`<div class="banner" role="alert" data-testid="notification">
  <span>${n.text}</span>
  ${n.connectionId ? html`<form method="post" action="/connections/${n.connectionId}/reconnect" class="inline"><input type="hidden" name="_csrf" value="${csrf}"><button type="submit">Reconnect</button></form>` : ''}
</div>`,
)}
<h1>Integrations</h1>
<p class="lede">Connect the tools nunq may use on your behalf. Your sign-in stays with the provider; nunq keeps its tokens encrypted and never shows them.</p>
${integrations.length === 0 ? html`<p class="muted">No integrations are configured yet. An administrator adds them.</p>` : ''}
<ul class="grid" aria-label="Integrations">
${integrations.map((i) => card(i, csrf, options.problems?.get(i.id)))}
</ul>`,
  });
}

function card(i: UserIntegration, csrf: string, problem: string | undefined): SafeHtml {
  const who = i.account?.name ?? i.account?.email ?? i.account?.id;
  const label = i.status === 'active' && who ? `Connected as ${who}` : statusText[i.status];
  return html`<li class="card" data-testid="integration-${i.id}" aria-labelledby="int-${i.id}">
  <span class="kind">${i.kind === 'mcp' ? 'MCP server' : 'Integration'}</span>
  <h3 id="int-${i.id}">${i.name}</h3>
  ${i.description ? html`<p>${i.description}</p>` : ''}
  <span class="status status-${i.status}" data-testid="status-${i.id}">${label}</span>
  ${problem ? html`<p class="problem" role="note" data-testid="problem-${i.id}">This server cannot be connected right now: ${problem}</p>` : ''}
  <div class="actions">
  ${
    i.status === 'not_connected'
      ? html`<form method="post" action="/connect/${i.id}" class="inline"><input type="hidden" name="_csrf" value="${csrf}"><button type="submit" data-testid="connect-${i.id}">Connect</button></form>`
      : html`<form method="post" action="/connections/${i.connectionId}/reconnect" class="inline"><input type="hidden" name="_csrf" value="${csrf}"><button type="submit" class="${i.status === 'active' ? 'secondary' : ''}" data-testid="reconnect-${i.id}">Reconnect</button></form>
  <form method="post" action="/connections/${i.connectionId}/disconnect" class="inline"><input type="hidden" name="_csrf" value="${csrf}"><button type="submit" class="danger" data-testid="disconnect-${i.id}">Disconnect</button></form>`
  }
  </div>
</li>`;
}
