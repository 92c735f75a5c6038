import { html, type SafeHtml } from '../../html.js';
import {
  checkField,
  type FieldError,
  type FormValues,
  secretField,
  selectField,
  textField,
} from './forms.js';

// The fields of the console's catalog forms, by kind of entry (and a provider's by its type).
// Only what the console edits is here; everything else an entry has (authorization parameters,
// a template's quirks, a private key) is kept as it is and changed through the API.

/** Whether a secret is stored and when it changed: all the console ever shows of it. */
export interface SecretState {
  isSet: boolean;
  changedAt: number | null;
}

const clientAuthOptions = [
  ['client_secret_basic', 'client_secret_basic (Authorization header)'],
  ['client_secret_post', 'client_secret_post (request body)'],
  ['none', 'none (public client, PKCE)'],
] as const;

/** A provider's fields for its `type`; the client secret is write-only. */
export function providerFields(
  type: string,
  values: FormValues,
  errors: readonly FieldError[],
  secret: SecretState & { hasPrivateKey: boolean },
): SafeHtml {
  const f = (name: string, label: string, extra: { required?: boolean; hint?: string } = {}) =>
    textField({ name, label, values, errors, ...extra });
  const byType =
    type === 'entra'
      ? f('tenant', 'Tenant (organizations, common, consumers, a tenant id or a domain)', {
          hint: 'Empty: organizations.',
        })
      : type === 'oidc'
        ? f('issuer', 'Issuer (its discovery document is read from there)', { required: true })
        : html`${f('authorizationEndpoint', 'Authorization endpoint', { required: true })}${f(
            'tokenEndpoint',
            'Token endpoint',
            { required: true },
          )}${f('revocationEndpoint', 'Revocation endpoint (optional)')}${f(
            'userinfoEndpoint',
            'Userinfo endpoint (optional)',
          )}${f('issuer', 'Issuer (optional)')}`;
  const methods = secret.hasPrivateKey
    ? [...clientAuthOptions, ['private_key_jwt', 'private_key_jwt (the stored private key)'] as const]
    : clientAuthOptions;
  return html`${byType}
${f('clientId', 'Client id', { required: true })}
${secretField({ name: 'clientSecret', label: 'Client secret', errors, values, clearable: true, ...secret })}
${selectField({ name: 'clientAuthMethod', label: 'Client authentication', values, errors, options: methods })}
${secret.hasPrivateKey ? html`<p class="muted">A private key is set (write-only); change it through the API.</p>` : ''}`;
}

/** An integration's fields; `withId` on the Add form (an id never changes afterwards). */
export function integrationFields(
  values: FormValues,
  errors: readonly FieldError[],
  providers: readonly string[],
  withId: boolean,
): SafeHtml {
  return html`${
    withId
      ? textField({
          name: 'id',
          label: 'Id (lowercase letters, digits, - and _; never changes)',
          values,
          errors,
          required: true,
        })
      : ''
  }
${textField({ name: 'name', label: 'Name users see', values, errors, required: true })}
${textField({ name: 'description', label: 'Description (optional)', values, errors })}
${selectField({ name: 'provider', label: 'Provider', values, errors, options: providers.map((p) => [p, p] as const), empty: 'Choose a provider' })}
${textField({ name: 'scopes', label: 'Scopes (separated by spaces)', values, errors, placeholder: 'offline_access openid' })}
${textField({ name: 'apiBaseUrl', path: 'api', label: 'API base URL (where the proxy may send the token; optional)', values, errors, placeholder: 'https://api.example' })}
${textField({ name: 'groups', label: 'Groups (separated by commas; empty: everyone)', values, errors, hint: 'Only users in one of these groups see and connect it.' })}`;
}

/** An MCP server's fields; its client secret is write-only. */
export function mcpServerFields(
  values: FormValues,
  errors: readonly FieldError[],
  secret: SecretState,
): SafeHtml {
  return html`${textField({ name: 'name', label: 'Name users see', values, errors, required: true })}
${textField({ name: 'description', label: 'Description (optional)', values, errors })}
${textField({ name: 'url', label: 'Server URL', values, errors, required: true })}
${textField({ name: 'scopes', label: 'Scopes (separated by spaces; empty: what the server advertises)', values, errors })}
${textField({ name: 'groups', label: 'Groups (separated by commas; empty: everyone)', values, errors })}
<fieldset><legend>Pre-registered client (optional: without one, CIMD or dynamic registration)</legend>
${textField({ name: 'clientId', label: 'Client id', values, errors })}
${secretField({ name: 'clientSecret', label: 'Client secret', errors, values, clearable: true, ...secret })}
${selectField({ name: 'clientAuthMethod', label: 'Client authentication', values, errors, options: clientAuthOptions, empty: 'default' })}
</fieldset>
${checkField({ name: 'pkce', label: 'Assume PKCE S256 (the authorization server supports it without saying so)', values })}
${checkField({ name: 'resourceOmit', label: 'Omit the resource parameter (authorization servers that refuse RFC 8707)', values })}`;
}
