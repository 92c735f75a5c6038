/**
 * `template:` on a provider in the config file: the template fills in type, endpoints,
 * parameters, client authentication and quirks; fields in the file win; problems are named by
 * field (an unknown template lists the known ones), by `check-config` too.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { type Config, parseConfig } from '../../src/config/index.js';
import { minimalYaml, problemsOf } from './fixtures/helpers.js';

function parse(yaml: string): Config {
  return parseConfig(`${minimalYaml()}${yaml}`, {});
}

function problems(yaml: string): string[] {
  return problemsOf(() => parse(yaml));
}

describe('providers: template', () => {
  it('fills a provider from its template: an admin gives only the id, client id and secret', () => {
    const config = parse(`providers:
  - { id: gh, template: github, clientId: Iv1.abc, clientSecret: s3cret }
  - { id: work, template: entra, tenant: contoso.onmicrosoft.com, clientId: c, clientSecret: s }
integrations:
  - { id: repos, name: Repos, provider: gh, scopes: [repo], api: { baseUrl: "https://api.github.com" } }
`);
    expect(config.providers[0]).toEqual({
      id: 'gh',
      template: 'github',
      type: 'oauth2',
      authorizationEndpoint: 'https://github.com/login/oauth/authorize',
      tokenEndpoint: 'https://github.com/login/oauth/access_token',
      userinfoEndpoint: 'https://api.github.com/user',
      scopeSeparator: ' ',
      tokenResponseShape: 'github',
      clientId: 'Iv1.abc',
      clientSecret: 's3cret',
      clientAuthMethod: 'client_secret_post',
    });
    expect(config.providers[1]).toMatchObject({
      type: 'entra',
      tenant: 'contoso.onmicrosoft.com',
      authority: 'https://login.microsoftonline.com',
      clientAuthMethod: 'client_secret_post',
    });
  });

  it('lets fields in the file override the template, parameters key by key', () => {
    const config = parse(`providers:
  - id: g
    template: google
    clientId: c
    clientSecret: s
    clientAuthMethod: client_secret_basic
    authorizationParams: { prompt: select_account, hd: acme.example }
  - id: sf
    template: salesforce
    clientId: c
    clientSecret: s
    authorizationEndpoint: https://test.salesforce.com/services/oauth2/authorize
    tokenEndpoint: https://test.salesforce.com/services/oauth2/token
    connectionApiBase: { from: token_response, field: instance_url, hosts: ["*.sandbox.my.salesforce.com"] }
`);
    expect(config.providers[0]).toMatchObject({
      clientAuthMethod: 'client_secret_basic',
      authorizationParams: { access_type: 'offline', prompt: 'select_account', hd: 'acme.example' },
    });
    expect(config.providers[1]).toMatchObject({
      tokenEndpoint: 'https://test.salesforce.com/services/oauth2/token',
      revocationEndpoint: 'https://login.salesforce.com/services/oauth2/revoke',
      connectionApiBase: { hosts: ['*.sandbox.my.salesforce.com'] },
    });
  });

  it('names the field: an unknown template with the known ones, a clashing type, what the provider still lacks', () => {
    expect(
      problems(`providers:
  - { id: a, template: gogle, clientId: c, clientSecret: s }
  - { id: b, template: slack, type: oidc, clientId: c, clientSecret: s }
  - { id: c, template: hubspot, clientId: c }
  - { id: d, template: github, clientSecret: s, tokenEndpoint: "ftp://github.example/token" }
  - { id: e, template: notion, clientId: c, clientSecret: s, tokenRequestBody: xml }
  - { id: f, template: atlassian, clientId: c, clientSecret: s, connectionApiBase: { from: somewhere } }
`),
    ).toEqual([
      'providers[0].template: must be one of the known templates: entra, google, github, atlassian, slack, salesforce, hubspot, notion, linear, dropbox, box, zoom',
      'providers[1].type: must be oauth2 for template slack (or left out)',
      'providers[2].clientSecret: required when clientAuthMethod is client_secret_post',
      'providers[3].clientId: required',
      'providers[3].tokenEndpoint: must be an absolute http(s) URL',
      'providers[4].tokenRequestBody: must be "json"',
      'providers[5].connectionApiBase.from: must be one of "token_response", "accessible_resources"',
    ]);
  });

  it('refuses integration scopes the template forbids, naming the integration field', () => {
    expect(
      problems(`providers:
  - { id: work, template: entra, tenant: contoso.onmicrosoft.com, clientId: c, clientSecret: s }
  - { id: notion, template: notion, clientId: c, clientSecret: s }
integrations:
  - id: both
    name: Both
    provider: work
    scopes: ["https://graph.microsoft.com/Files.Read", "https://api.businesscentral.dynamics.com/user_impersonation"]
  - { id: files, name: Files, provider: work, scopes: [offline_access, "https://graph.microsoft.com/Files.Read"] }
  - { id: pages, name: Pages, provider: notion, scopes: [read_content] }
  - { id: pages-ok, name: Pages, provider: notion }
`),
    ).toEqual([
      'integrations[0].scopes: must name one resource only (Entra issues one access token per API)',
      'integrations[2].scopes: must be empty: Notion has no scopes (what the integration may do is set at the provider)',
    ]);
  });

  it('keeps type: entra | oidc | oauth2 without a template as before (no template field added)', () => {
    const config = parse(`providers:
  - { id: legacy, type: oauth2, authorizationEndpoint: "https://l.example/a", tokenEndpoint: "https://l.example/t", clientId: c }
`);
    expect(config.providers[0]).toEqual({
      id: 'legacy',
      type: 'oauth2',
      authorizationEndpoint: 'https://l.example/a',
      tokenEndpoint: 'https://l.example/t',
      clientId: 'c',
      scopeSeparator: ' ',
      clientAuthMethod: 'none',
    });
  });

  it('check-config prints template problems as path: message lines, never the secret', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'nunq-templates-'));
    try {
      const file = join(cwd, 'nunq.yaml');
      writeFileSync(
        file,
        `${minimalYaml()}providers:\n  - { id: z, template: zooom, clientId: c, clientSecret: "TOPSECRET-zoom-value" }\n`,
      );
      const out: string[] = [];
      const err: string[] = [];
      const io = {
        out: (t: string) => out.push(t),
        err: (t: string) => err.push(t),
        env: {},
        cwd,
        isTTY: false,
      };
      expect(await main(['check-config', file], io)).toBe(1);
      expect(err.join('')).toBe(
        'providers[0].template: must be one of the known templates: entra, google, github, atlassian, slack, salesforce, hubspot, notion, linear, dropbox, box, zoom\n',
      );
      expect(err.join('')).not.toContain('TOPSECRET');
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  });
});
