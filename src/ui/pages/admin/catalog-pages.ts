import type { Identity } from '../../../identity/identity.js';
import { html, type SafeHtml } from '../../html.js';
import { layout, type PageOptions } from '../../layout.js';
import { integrationFields } from './catalog-fields.js';
import { csrfField, errorSummary, type FieldError, type FormValues } from './forms.js';
import { adminNav } from './nav.js';

// The console's pages for one catalog entry (provider, integration, MCP server): its edit form,
// or for an entry of the config file its settings with no control at all; and the pages that ask
// before disabling or deleting it, saying what happens to its connections.

/** Which console section an entry belongs to. */
export interface Section {
  /** `/admin/providers`, `/admin/integrations` or `/admin/mcp-servers`. */
  path: string;
  /** `provider`, `integration` or `MCP server`. */
  what: string;
}

/** What every entry page says of its entry. */
export interface EntrySummary {
  id: string;
  name: string;
  source: 'config' | 'admin';
  /** Its own switch. */
  enabled: boolean;
  /** Offered to users (an integration is not while its provider is disabled). */
  usable: boolean;
  /** Its connections (a provider: those of its integrations). */
  connections: number;
  /** Its version, as the API's ETag: the forms send it back, so a stale one is refused. */
  etag: string;
}

const plural = (n: number, one: string) => `${n} ${one}${n === 1 ? '' : 's'}`;

function page(
  admin: Identity,
  section: Section,
  title: string,
  body: SafeHtml,
  flash?: PageOptions['flash'],
) {
  return layout({
    title: `${title} · Admin`,
    identity: admin,
    flash,
    body: html`<h1>Administration</h1>${adminNav(section.path)}${body}`,
  });
}

function statusLine(e: EntrySummary): SafeHtml {
  const state = e.enabled
    ? e.usable
      ? 'Enabled'
      : 'Enabled, but not offered: its provider is disabled'
    : 'Disabled: not offered to users; its connections are kept but unusable';
  return html`<dl class="facts" data-testid="entry-status"><dt>Status</dt><dd>${state}</dd><dt>Connections</dt><dd>${e.connections}</dd><dt>Source</dt><dd>${e.source === 'config' ? 'config file' : 'console / API'}</dd></dl>`;
}

/**
 * An entry's page: its edit form (run-time entries) with Enable or Disable… and Delete…, or for a
 * config-file entry its settings and a note, with no control.
 */
export function entryPage(o: {
  admin: Identity;
  section: Section;
  entry: EntrySummary;
  /** Label and value of each setting, shown for a config-file entry. */
  facts: ReadonlyArray<readonly [string, string]>;
  fields: SafeHtml;
  errors: readonly FieldError[];
  /** A refusal of the whole form (an edit conflict), shown above it. */
  notice?: string | undefined;
  flash?: PageOptions['flash'];
}): SafeHtml {
  const { admin, section, entry: e } = o;
  const base = `${section.path}/${e.id}`;
  const heading = html`<h2>${section.what[0]?.toUpperCase()}${section.what.slice(1)} <code>${e.id}</code></h2>
<p><a href="${section.path}">Back to the list</a></p>${statusLine(e)}`;
  if (e.source === 'config') {
    return page(
      admin,
      section,
      e.name,
      html`${heading}<p class="facts-note" data-testid="from-config">From the config file: read-only here. Change the file to change it.</p>
<dl class="facts">${o.facts.map(([k, v]) => html`<dt>${k}</dt><dd>${v}</dd>`)}</dl>`,
      o.flash,
    );
  }
  const csrf = csrfField(admin);
  const etag = html`<input type="hidden" name="etag" value="${e.etag}">`;
  return page(
    admin,
    section,
    e.name,
    html`${heading}
${o.notice === undefined ? '' : html`<div class="flash flash-error" role="alert" data-testid="form-notice">${o.notice}</div>`}
${errorSummary(o.errors)}
<form method="post" action="${base}" class="narrow" data-testid="edit-form">${csrf}${etag}
${o.fields}
<div class="actions"><button type="submit">Save</button> <a class="button secondary" href="${section.path}">Cancel</a></div>
</form>
<h3>Switch or remove</h3>
<div class="actions">${
      e.enabled
        ? html`<a class="button secondary" href="${base}/disable" data-testid="disable">Disable…</a>`
        : html`<form method="post" action="${base}/enable" class="inline">${csrf}${etag}<button type="submit" class="secondary" data-testid="enable">Enable</button></form>`
    } <a class="button secondary" href="${base}/delete" data-testid="delete">Delete…</a></div>`,
    o.flash,
  );
}

/**
 * Asks before disabling or deleting an entry, saying what happens to its connections: disabled,
 * they are kept but unusable until it is enabled again; deleted, each is revoked at the provider
 * and removed. `refusal` is why the last try did not happen (in use, edited meanwhile).
 */
export function confirmPage(o: {
  admin: Identity;
  section: Section;
  entry: EntrySummary;
  action: 'disable' | 'delete';
  /** Providers: the integrations that use it. */
  usedBy?: readonly string[];
  refusal?: { text: string; integrations?: readonly string[] } | undefined;
}): SafeHtml {
  const { admin, section, entry: e, action } = o;
  const base = `${section.path}/${e.id}`;
  const n = e.connections;
  const usedBy = o.usedBy ?? [];
  const consequence =
    action === 'disable'
      ? html`<p data-testid="consequence">${plural(n, 'connection')} ${n === 1 ? 'is' : 'are'} kept but unusable until re-enabled.</p>
<p>Users no longer see ${usedBy.length > 0 ? html`its integrations (${usedBy.join(', ')})` : 'it'} or can connect ${usedBy.length > 0 ? 'them' : 'it'}; the proxy and the MCP gateway answer <code>integration_disabled</code>.</p>`
      : html`<p data-testid="consequence">${plural(n, 'connection')} will be revoked at the provider and removed.</p>
${usedBy.length > 0 ? html`<p>It is used by ${plural(usedBy.length, 'integration')} (${usedBy.join(', ')}): a provider in use cannot be deleted; delete or move them first.</p>` : ''}
<p>This cannot be undone.</p>`;
  const refusal =
    o.refusal === undefined
      ? ''
      : html`<div class="flash flash-error" role="alert" data-testid="refusal"><p>${o.refusal.text}</p>${
          o.refusal.integrations === undefined
            ? ''
            : html`<ul>${o.refusal.integrations.map((i) => html`<li><a href="/admin/integrations/${i}">${i}</a></li>`)}</ul>`
        }</div>`;
  return page(
    admin,
    section,
    `${action === 'disable' ? 'Disable' : 'Delete'} ${e.id}`,
    html`<h2>${action === 'disable' ? 'Disable' : 'Delete'} the ${section.what} <code>${e.id}</code> (${e.name})?</h2>
${refusal}${consequence}
<form method="post" action="${base}/${action}">${csrfField(admin)}${action === 'disable' ? html`<input type="hidden" name="etag" value="${e.etag}">` : ''}
<div class="actions"><button type="submit" class="danger" data-testid="confirm-${action}">${action === 'disable' ? 'Disable' : 'Delete'}</button> <a class="button secondary" href="${base}">Cancel</a></div></form>`,
  );
}

/** A row of the integrations list. */
export interface IntegrationRow {
  id: string;
  name: string;
  provider: string;
  enabled: boolean;
  usable: boolean;
  connections: number;
  source: 'config' | 'admin';
}

/** `/admin/integrations`: every OAuth integration with its state, and the Add integration form. */
export function integrationsListPage(o: {
  admin: Identity;
  rows: readonly IntegrationRow[];
  providers: readonly string[];
  values: FormValues;
  errors: readonly FieldError[];
  flash?: PageOptions['flash'];
}): SafeHtml {
  const section = { path: '/admin/integrations', what: 'integration' };
  const state = (r: IntegrationRow) =>
    r.enabled ? (r.usable ? 'enabled' : 'enabled (provider disabled)') : 'disabled';
  return page(
    o.admin,
    section,
    'Integrations',
    html`<h2>Integrations</h2>
<div class="scroll"><table data-testid="admin-integrations"><thead><tr><th scope="col">Id</th><th scope="col">Name</th><th scope="col">Provider</th><th scope="col">Status</th><th scope="col">Connections</th><th scope="col">Source</th></tr></thead><tbody>
${o.rows.map(
  (r) =>
    html`<tr data-testid="integration-row-${r.id}"><td><a href="/admin/integrations/${r.id}"><code>${r.id}</code></a></td><td>${r.name}</td><td><code>${r.provider}</code></td><td>${state(r)}</td><td>${r.connections}</td><td>${r.source === 'config' ? 'config file' : 'console / API'}</td></tr>`,
)}
</tbody></table></div>
${o.rows.length === 0 ? html`<p class="muted">No integration yet.</p>` : ''}
<h2>Add an integration</h2>
${o.providers.length === 0 ? html`<p class="muted">Add a provider first: an integration signs in through one.</p>` : ''}
${errorSummary(o.errors)}
<form method="post" action="/admin/integrations" class="narrow" data-testid="add-integration">${csrfField(o.admin)}
${integrationFields(o.values, o.errors, o.providers, true)}
<div class="actions"><button type="submit">Add integration</button></div>
</form>`,
    o.flash,
  );
}
