import type { IntegrationRecord, ProviderRecord } from '../../store/repos/catalog.js';
import type { SafeHtml } from '../../ui/html.js';
import { integrationFields, mcpServerFields, providerFields } from '../../ui/pages/admin/catalog-fields.js';
import type { EntrySummary, Section } from '../../ui/pages/admin/catalog-pages.js';
import type { FieldError, FormValues } from '../../ui/pages/admin/forms.js';
import { isoMinute } from '../../ui/pages/admin/forms.js';
import type { AppContext } from '../context.js';
import { type Actor, type CatalogActions, etagOf } from './admin-catalog-actions.js';
import {
  integrationPatch,
  integrationValues,
  mcpServerPatch,
  mcpServerValues,
  providerPatch,
  providerValues,
} from './admin-catalog-forms.js';
import {
  type EntryPageRoutes,
  integrationPageRoutes,
  mcpServerPageRoutes,
  providerPageRoutes,
} from './admin-catalog-page-specs.js';

// The three kinds of catalog entry the console edits, each as what its pages need: how it loads
// (summary, form values, settings for a read-only view), its form's fields, and its change and
// delete, which are the shared catalog actions the JSON API calls.

type Form = Readonly<Record<string, string | undefined>>;

/** One entry as its pages need it. */
export interface LoadedEntry {
  summary: EntrySummary;
  values: FormValues;
  facts: Array<readonly [string, string]>;
  /** Providers: the integrations that use it. */
  usedBy?: string[];
  fields(values: FormValues, errors: readonly FieldError[]): Promise<SafeHtml>;
  patchOf(form: Form): Record<string, unknown>;
}

export interface ConsoleKind {
  section: Section;
  routes: EntryPageRoutes;
  load(id: string): Promise<LoadedEntry>;
  update(actor: Actor, id: string, patch: Record<string, unknown>, etag: string): Promise<unknown>;
  remove(actor: Actor, id: string): Promise<void>;
}

const shown = (v: unknown): string =>
  Array.isArray(v) ? v.join(' ') : typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v ?? '—');
const secretFact = (isSet: boolean, changedAt: number | null) =>
  isSet ? `set (write-only)${changedAt === null ? '' : `, changed at ${isoMinute(changedAt)}`}` : 'not set';

/** The console's three kinds of entry, each on the shared actions. */
export function consoleKinds(ctx: AppContext, actions: CatalogActions): ConsoleKind[] {
  const summaryOf = (
    r: ProviderRecord | IntegrationRecord,
    name: string,
    enabled: boolean,
    usable: boolean,
    connections: number,
  ): EntrySummary => ({
    id: r.id,
    name,
    source: r.source,
    enabled,
    usable,
    connections,
    etag: etagOf(r.updatedAt),
  });

  const provider: ConsoleKind = {
    section: { path: '/admin/providers', what: 'provider' },
    routes: providerPageRoutes,
    async load(id) {
      const p = await actions.providerOr404(id);
      const credentials = await actions.credentialsOf('providers', id);
      const isSet = credentials === undefined ? p.hasCredentials : credentials.clientSecret !== undefined;
      const secret = {
        isSet,
        changedAt: p.clientSecretChangedAt,
        hasPrivateKey: credentials?.privateKey !== undefined,
      };
      return {
        summary: summaryOf(p, p.id, p.enabled, p.enabled, await actions.connectionsOfProvider(id)),
        values: providerValues(p),
        facts: [
          ['Type', p.type],
          ...Object.entries(p.settings).map(([k, v]) => [k, shown(v)] as const),
          ['Client secret', secretFact(isSet, p.clientSecretChangedAt)],
        ],
        usedBy: await ctx.catalog.integrationsUsing(id),
        fields: async (values, errors) => providerFields(p.type, values, errors, secret),
        patchOf: (form) => providerPatch(p.type, form),
      };
    },
    update: (actor, id, patch, etag) => actions.updateProvider(actor, id, patch, etag),
    remove: (actor, id) => actions.deleteProvider(actor, id),
  };

  const integration: ConsoleKind = {
    section: { path: '/admin/integrations', what: 'integration' },
    routes: integrationPageRoutes,
    async load(id) {
      const i = await actions.entryOr404('oauth', id);
      const s = i.settings;
      return {
        summary: summaryOf(i, i.name, i.ownEnabled, i.enabled, await ctx.connections.countForIntegration(id)),
        values: integrationValues(i),
        facts: [
          ['Name', i.name],
          ['Description', s.description ?? '—'],
          ['Provider', i.providerId ?? '—'],
          ['Scopes', s.scopes.join(' ') || '—'],
          ['API base URL', s.api?.baseUrl ?? '—'],
          ['Groups', s.groups?.join(', ') ?? 'everyone'],
        ],
        fields: async (values, errors) =>
          integrationFields(
            values,
            errors,
            (await ctx.catalog.listProviders()).map((p) => p.id),
            false,
          ),
        patchOf: integrationPatch,
      };
    },
    update: (actor, id, patch, etag) => actions.updateEntry('oauth', actor, id, patch, etag),
    remove: (actor, id) => actions.deleteEntry('oauth', actor, id, true),
  };

  const mcpServer: ConsoleKind = {
    section: { path: '/admin/mcp-servers', what: 'MCP server' },
    routes: mcpServerPageRoutes,
    async load(id) {
      const i = await actions.entryOr404('mcp', id);
      const s = i.settings;
      const secret = { isSet: i.hasCredentials, changedAt: i.clientSecretChangedAt };
      return {
        summary: summaryOf(i, i.name, i.ownEnabled, i.enabled, await ctx.connections.countForIntegration(id)),
        values: mcpServerValues(i),
        facts: [
          ['Name', i.name],
          ['Description', s.description ?? '—'],
          ['URL', s.url ?? '—'],
          ['Scopes', s.scopes.join(' ') || 'as advertised'],
          ['Groups', s.groups?.join(', ') ?? 'everyone'],
          ['Client id', s.clientId ?? 'none (CIMD or dynamic registration)'],
          ['Client secret', secretFact(secret.isSet, secret.changedAt)],
        ],
        fields: async (values, errors) => mcpServerFields(values, errors, secret),
        patchOf: mcpServerPatch,
      };
    },
    update: (actor, id, patch, etag) => actions.updateEntry('mcp', actor, id, patch, etag),
    remove: (actor, id) => actions.deleteEntry('mcp', actor, id, true),
  };

  return [provider, integration, mcpServer];
}
