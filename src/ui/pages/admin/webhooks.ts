import { webhookEventTypes } from '../../../config/schema.js';
import type { Identity } from '../../../identity/identity.js';
import type { WebhookDeliveryView, WebhookEndpointView } from '../../../notify/webhooks.js';
import { html, type SafeHtml } from '../../html.js';
import { layout, type PageOptions } from '../../layout.js';
import {
  checkField,
  csrfField,
  errorSummary,
  errorsAt,
  type FieldError,
  type FormValues,
  textField,
} from './forms.js';
import { adminNav } from './nav.js';

// The console's webhooks pages: the endpoints (secrets shown only as set) with the latest
// deliveries, and one endpoint's edit form (URL, events, enabled, a new secret), read-only for an
// endpoint of the config file.

function eventBoxes(chosen: readonly string[]): SafeHtml {
  return html`<fieldset><legend>Events (none ticked: all)</legend>${webhookEventTypes.map(
    (t) =>
      html`<label class="check"><input type="checkbox" name="events" value="${t}"${chosen.includes(t) ? html` checked` : ''}> <code>${t}</code></label>`,
  )}</fieldset>`;
}

/** `/admin/webhooks`: the endpoints, the Add form, and the latest deliveries. */
export function webhooksPage(o: {
  admin: Identity;
  endpoints: readonly WebhookEndpointView[];
  deliveries: readonly WebhookDeliveryView[];
  flash?: PageOptions['flash'];
}): SafeHtml {
  const csrf = csrfField(o.admin);
  return layout({
    title: 'Webhooks · Admin',
    identity: o.admin,
    flash: o.flash,
    body: html`<h1>Administration</h1>${adminNav('/admin/webhooks')}
<h2>Endpoints</h2>
<div class="scroll"><table data-testid="admin-webhooks"><thead><tr><th scope="col">URL</th><th scope="col">Events</th><th scope="col">Secret</th><th scope="col">Source</th><th scope="col">Enabled</th><th scope="col">Actions</th></tr></thead><tbody>
${o.endpoints.map(
  (e) =>
    html`<tr><td><code>${e.url}</code></td><td>${e.events === null ? 'all' : e.events.join(', ')}</td><td>set (write-only)</td><td>${e.source === 'config' ? 'config file' : 'console'}</td><td>${e.enabled ? 'yes' : 'no'}</td>
<td class="actions">${
      e.source === 'admin'
        ? html`<a class="button secondary" href="/admin/webhooks/${e.id}" aria-label="Edit endpoint ${e.url}">Edit</a> <form method="post" action="/admin/webhooks/${e.id}/delete" class="inline">${csrf}<button type="submit" class="danger" aria-label="Delete endpoint ${e.url}">Delete</button></form>`
        : html`<a href="/admin/webhooks/${e.id}" aria-label="View endpoint ${e.url}">View</a> <span class="muted">(config file)</span>`
    }</td></tr>`,
)}
</tbody></table></div>
<h3>Add an endpoint</h3>
<form method="post" action="/admin/webhooks" class="narrow">${csrf}
<label for="wh-url">URL</label><input type="text" id="wh-url" name="url" required placeholder="https://platform.example/hooks/nunq">
<label for="wh-secret">Signing secret (at least 16 characters; never shown again)</label><input type="password" id="wh-secret" name="secret" required minlength="16" autocomplete="new-password">
${eventBoxes([])}
<div class="actions"><button type="submit">Add endpoint</button></div>
</form>
<h2>Recent deliveries</h2>
<div class="scroll"><table data-testid="admin-deliveries"><thead><tr><th scope="col">Created</th><th scope="col">Event</th><th scope="col">Endpoint</th><th scope="col">Status</th><th scope="col">Attempts</th><th scope="col">Last answer</th><th scope="col">Actions</th></tr></thead><tbody>
${o.deliveries.map(
  (d) =>
    html`<tr><td>${d.createdAt}</td><td><code>${d.eventType}</code></td><td>${o.endpoints.find((e) => e.id === d.endpointId)?.url ?? d.endpointId}</td><td>${d.status}</td><td>${d.attempts}</td><td>${d.lastStatus === null ? (d.lastError ?? '') : `HTTP ${d.lastStatus}`}</td>
<td><form method="post" action="/admin/webhooks/deliveries/${d.id}/redeliver" class="inline">${csrf}<button type="submit" class="secondary">Redeliver</button></form></td></tr>`,
)}
</tbody></table></div>
${o.deliveries.length === 0 ? html`<p class="muted">No delivery yet.</p>` : ''}`,
  });
}

/**
 * One endpoint: for one added at run time its edit form (the secret field always empty: leave it
 * so to keep the secret, type one to rotate it); for one of the config file its settings only.
 */
export function webhookPage(o: {
  admin: Identity;
  endpoint: WebhookEndpointView;
  values: FormValues;
  events: readonly string[];
  errors: readonly FieldError[];
}): SafeHtml {
  const e = o.endpoint;
  const body =
    e.source === 'config'
      ? html`${errorSummary(o.errors)}<p class="facts-note" data-testid="from-config">From the config file: read-only here. Change the file to change it.</p>
<dl class="facts"><dt>URL</dt><dd><code>${e.url}</code></dd><dt>Events</dt><dd>${e.events === null ? 'all' : e.events.join(', ')}</dd><dt>Secret</dt><dd>set (write-only)</dd><dt>Enabled</dt><dd>${e.enabled ? 'yes' : 'no'}</dd></dl>`
      : html`${errorSummary(o.errors)}
<form method="post" action="/admin/webhooks/${e.id}" class="narrow" data-testid="edit-form">${csrfField(o.admin)}
${textField({ name: 'url', label: 'URL', values: o.values, errors: o.errors, required: true })}
${eventBoxes(o.events)}${errorsAt(o.errors, 'events').map((x) => html`<p class="field-error">${x.message}</p>`)}
${checkField({ name: 'enabled', label: 'Enabled (a disabled endpoint gets no event; its pending deliveries stop)', values: o.values })}
<label for="f-secret">New signing secret (rotate)</label><p class="muted hint" data-testid="secret-status">Currently set. Never shown; leave empty to keep it, or type a new one of at least 16 characters.</p><input type="password" id="f-secret" name="secret" value="" autocomplete="new-password"${errorsAt(o.errors, 'secret').length > 0 ? html` aria-invalid="true" aria-describedby="f-secret-error"` : ''}>${errorsAt(o.errors, 'secret').map((x) => html`<p class="field-error" id="f-secret-error">${x.message}</p>`)}
<div class="actions"><button type="submit">Save</button> <a class="button secondary" href="/admin/webhooks">Cancel</a></div>
</form>`;
  return layout({
    title: 'Webhook endpoint · Admin',
    identity: o.admin,
    body: html`<h1>Administration</h1>${adminNav('/admin/webhooks')}
<h2>Webhook endpoint <code>${e.url}</code></h2><p><a href="/admin/webhooks">Back to the list</a></p>
${body}`,
  });
}
