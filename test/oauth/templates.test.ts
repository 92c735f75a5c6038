/**
 * The template files themselves: each validates against the template schema, each turns into a
 * valid provider once an admin adds only a client id and secret (and Entra's tenant), and each
 * suggested integration is one the provider can serve. Plus applyTemplate's merge rules.
 */
import { describe, expect, it } from 'vitest';
import { providerSchema } from '../../src/config/schema.js';
import { hostAllowed } from '../../src/oauth/connection-api-base.js';
import { entraScopes } from '../../src/oauth/providers/entra.js';
import {
  applyTemplate,
  entraAdminConsentUrl,
  getTemplate,
  providerTemplates,
  TemplateError,
  templateSources,
} from '../../src/oauth/templates/index.js';
import { templateSchema } from '../../src/oauth/templates/template.js';

const expectedIds = [
  'entra',
  'google',
  'github',
  'atlassian',
  'slack',
  'salesforce',
  'hubspot',
  'notion',
  'linear',
  'dropbox',
  'box',
  'zoom',
];

describe('provider template files', () => {
  it('are the twelve the issue asks for, with unique ids', () => {
    expect(templateSources.map((t) => t.id)).toEqual(expectedIds);
    expect([...providerTemplates().keys()]).toEqual(expectedIds);
  });

  it.each(templateSources.map((t) => [t.id, t] as const))(
    '%s validates against the template schema',
    (_id, source) => {
      const parsed = templateSchema.safeParse(source);
      expect(parsed.error?.issues ?? []).toEqual([]);
    },
  );

  it.each(expectedIds)('%s becomes a valid provider with only a client id and secret', (id) => {
    const input = {
      id: `p-${id}`,
      clientId: 'pasted-client-id',
      clientSecret: 'pasted-secret',
      ...(id === 'entra' ? { tenant: 'contoso.onmicrosoft.com' } : {}),
    };
    const parsed = providerSchema.safeParse(applyTemplate(id, input));
    expect(parsed.error?.issues ?? []).toEqual([]);
    const template = getTemplate(id)!;
    expect(parsed.data).toMatchObject({
      type: template.provider.type,
      template: id,
      clientAuthMethod: template.clientAuthMethod,
    });
  });

  it('entra: every suggested integration asks for one resource only', () => {
    for (const integration of getTemplate('entra')!.integrations) {
      expect(() => entraScopes(integration.scopes)).not.toThrow();
    }
  });

  it('every template states quirks and registration steps a person can follow', () => {
    for (const t of providerTemplates().values()) {
      for (const quirk of t.quirks) expect(quirk).toMatch(/^\S.{28,}\.$/); // a sentence, not a keyword
      expect(t.registration.steps.some((s) => /redirect|callback/i.test(s))).toBe(true);
    }
  });

  it.each([
    [
      'an http endpoint',
      (t: Record<string, unknown>) => ({
        ...t,
        provider: { ...(t.provider as object), tokenEndpoint: 'http://x.example/t' },
      }),
      'provider',
    ],
    ['no quirks', (t: Record<string, unknown>) => ({ ...t, quirks: [] }), 'quirks'],
    ['an unknown field', (t: Record<string, unknown>) => ({ ...t, colour: 'blue' }), ''],
    [
      'a scope with a space',
      (t: Record<string, unknown>) => ({ ...t, defaultScopes: ['a b'] }),
      'defaultScopes',
    ],
  ])('the schema refuses a template with %s', (_what, spoil, path) => {
    const github = templateSources.find((t) => t.id === 'github') as unknown as Record<string, unknown>;
    const parsed = templateSchema.safeParse(spoil(github));
    expect(parsed.success).toBe(false);
    expect(parsed.error!.issues.map((i) => String(i.path[0] ?? ''))).toContain(path);
  });
});

describe('applyTemplate', () => {
  it('fills in what the template says, the input winning field by field and parameter by parameter', () => {
    const provider = applyTemplate('google', {
      id: 'g',
      clientId: 'c',
      clientSecret: 's',
      issuer: 'https://accounts.example',
      authorizationParams: { prompt: 'select_account', hd: 'acme.example' },
    });
    expect(provider).toEqual({
      id: 'g',
      type: 'oidc',
      template: 'google',
      issuer: 'https://accounts.example',
      clientId: 'c',
      clientSecret: 's',
      clientAuthMethod: 'client_secret_post',
      authorizationParams: { access_type: 'offline', prompt: 'select_account', hd: 'acme.example' },
    });
  });

  it('sets the quirks a template needs', () => {
    expect(applyTemplate('slack', { id: 's', clientId: 'c', clientSecret: 's' })).toMatchObject({
      type: 'oauth2',
      tokenResponseShape: 'slack',
      scopeParameter: 'user_scope',
      scopeSeparator: ',',
    });
    expect(applyTemplate('notion', { id: 'n', clientId: 'c', clientSecret: 's' })).toMatchObject({
      tokenRequestBody: 'json',
      clientAuthMethod: 'client_secret_basic',
      authorizationParams: { owner: 'user' },
    });
    expect(applyTemplate('salesforce', { id: 'sf', clientId: 'c', clientSecret: 's' })).toMatchObject({
      connectionApiBase: { from: 'token_response', field: 'instance_url' },
    });
  });

  it('leaves the client authentication to a given private key', () => {
    const provider = applyTemplate('entra', {
      id: 'e',
      clientId: 'c',
      privateKey: 'PEM',
      privateKeyId: 'x5t',
    });
    expect(provider).not.toHaveProperty('clientAuthMethod');
  });

  it('names the field at fault: an unknown template (listing the known ones), a clashing type', () => {
    const fault = (f: () => unknown) => {
      try {
        f();
      } catch (error) {
        return error instanceof TemplateError ? [error.field, error.message] : error;
      }
      return undefined;
    };
    expect(fault(() => applyTemplate('gogle', { id: 'g' }))).toEqual([
      'template',
      `must be one of the known templates: ${expectedIds.join(', ')}`,
    ]);
    expect(fault(() => applyTemplate('github', { id: 'g', type: 'oidc' }))).toEqual([
      'type',
      'must be oauth2 for template github (or left out)',
    ]);
  });
});

describe('entraAdminConsentUrl', () => {
  it('asks for every configured permission (.default) unless scopes are given', () => {
    const url = entraAdminConsentUrl({
      tenant: 'contoso.onmicrosoft.com',
      clientId: 'c1',
      redirectUri: 'https://nunq.example/admin',
    });
    expect(url.href).toBe(
      'https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0/adminconsent?client_id=c1&redirect_uri=https%3A%2F%2Fnunq.example%2Fadmin&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default',
    );
  });
});

describe('hostAllowed (connectionApiBase.hosts)', () => {
  it.each([
    ['acme.my.salesforce.com', ['*.salesforce.com'], true],
    ['ACME.my.Salesforce.com', ['*.salesforce.com'], true],
    ['salesforce.com', ['*.salesforce.com'], false],
    ['evilsalesforce.com', ['*.salesforce.com'], false],
    ['salesforce.com.evil.example', ['*.salesforce.com'], false],
    ['127.0.0.1', ['127.0.0.1'], true],
    ['127.0.0.2', ['127.0.0.1'], false],
  ] as const)('%s in %j: %s', (host, hosts, allowed) => {
    expect(hostAllowed(host, hosts)).toBe(allowed);
  });
});
