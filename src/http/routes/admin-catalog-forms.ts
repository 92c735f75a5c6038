import type { IntegrationRecord, ProviderRecord } from '../../store/repos/catalog.js';
import type { FormValues } from '../../ui/pages/admin/forms.js';

// The console's catalog forms to and from the admin API's shapes: an entry as the form first shows
// it, and a form as sent as the JSON Merge Patch (RFC 7396) the API's PATCH takes, so the console
// edits through the very checks the API applies. An empty optional field removes the member
// (`null`); an empty secret field keeps the secret; "clear" removes it.

type Form = Readonly<Record<string, string | undefined>>;

const text = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const required = (v: string | undefined) => (v ?? '').trim();
const optional = (v: string | undefined) => (v === undefined || v.trim() === '' ? null : v.trim());
const on = (v: string | undefined) => v === 'on';
/** Scopes are separated by white space (a scope token has none: RFC 6749 §3.3). */
const scopeList = (v: string | undefined) => (v ?? '').split(/\s+/).filter((s) => s !== '');
/** Groups are separated by commas (a group name may contain spaces). */
const groupList = (v: string | undefined) => {
  const list = (v ?? '')
    .split(',')
    .map((g) => g.trim())
    .filter((g) => g !== '');
  return list.length === 0 ? null : list;
};
/** `clientSecret` as typed, or null to clear it; absent (kept) when the field is empty. */
const secretPatch = (form: Form): Record<string, unknown> =>
  form.clientSecret !== undefined && form.clientSecret !== ''
    ? { clientSecret: form.clientSecret }
    : on(form.clearSecret)
      ? { clientSecret: null }
      : {};

const providerFieldsByType: Record<string, { required: string[]; optional: string[] }> = {
  entra: { required: [], optional: ['tenant'] },
  oidc: { required: ['issuer'], optional: [] },
  oauth2: {
    required: ['authorizationEndpoint', 'tokenEndpoint'],
    optional: ['revocationEndpoint', 'userinfoEndpoint', 'issuer'],
  },
};

/** A provider as its edit form first shows it (never a secret). */
export function providerValues(p: ProviderRecord): FormValues {
  const fields = providerFieldsByType[p.type] ?? { required: [], optional: [] };
  return Object.fromEntries(
    ['clientId', 'clientAuthMethod', ...fields.required, ...fields.optional].map((k) => [
      k,
      text(p.settings[k]),
    ]),
  );
}

/** A provider's edit form as a merge patch of the fields its type shows. */
export function providerPatch(type: string, form: Form): Record<string, unknown> {
  const fields = providerFieldsByType[type] ?? { required: [], optional: [] };
  return {
    clientId: required(form.clientId),
    clientAuthMethod: optional(form.clientAuthMethod),
    ...Object.fromEntries(fields.required.map((k) => [k, required(form[k])])),
    ...Object.fromEntries(fields.optional.map((k) => [k, optional(form[k])])),
    ...secretPatch(form),
  };
}

/** An integration as its edit form first shows it. */
export function integrationValues(i: IntegrationRecord): FormValues {
  const s = i.settings;
  return {
    name: i.name,
    description: s.description,
    provider: i.providerId ?? '',
    scopes: s.scopes.join(' '),
    apiBaseUrl: s.api?.baseUrl,
    groups: s.groups?.join(', '),
  };
}

/** An integration's edit form as a merge patch. */
export function integrationPatch(form: Form): Record<string, unknown> {
  const baseUrl = optional(form.apiBaseUrl);
  return {
    name: required(form.name),
    description: optional(form.description),
    provider: required(form.provider),
    scopes: scopeList(form.scopes),
    api: baseUrl === null ? null : { baseUrl },
    groups: groupList(form.groups),
  };
}

/** The Add integration form as the API's create body (empty optional fields left out). */
export function integrationBody(form: Form): Record<string, unknown> {
  const patch = integrationPatch(form);
  return {
    id: required(form.id),
    ...Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== null)),
  };
}

/** An MCP server as its edit form first shows it (never a secret). */
export function mcpServerValues(i: IntegrationRecord): FormValues {
  const s = i.settings;
  return {
    name: i.name,
    description: s.description,
    url: s.url,
    scopes: s.scopes.join(' '),
    groups: s.groups?.join(', '),
    clientId: s.clientId,
    clientAuthMethod: s.clientAuthMethod,
    pkce: s.pkce === 'assume-s256' ? 'on' : undefined,
    resourceOmit: s.resource === 'omit' ? 'on' : undefined,
  };
}

/** An MCP server's edit form as a merge patch. */
export function mcpServerPatch(form: Form): Record<string, unknown> {
  const scopes = scopeList(form.scopes);
  return {
    name: required(form.name),
    description: optional(form.description),
    url: required(form.url),
    scopes: scopes.length === 0 ? null : scopes,
    groups: groupList(form.groups),
    clientId: optional(form.clientId),
    clientAuthMethod: optional(form.clientAuthMethod),
    pkce: on(form.pkce) ? 'assume-s256' : null,
    resource: on(form.resourceOmit) ? 'omit' : null,
    ...secretPatch(form),
  };
}
