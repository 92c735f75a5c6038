import type { ProviderTemplateInput } from './template.js';

/** Salesforce (any org, through login.salesforce.com). */
export const salesforce: ProviderTemplateInput = {
  id: 'salesforce',
  name: 'Salesforce',
  registration: {
    console: 'https://login.salesforce.com/lightning/setup/NavigationMenus/home',
    steps: [
      'In Setup, App Manager, create a Connected App (or an External Client App) with OAuth enabled.',
      'Set the callback URL to the redirect URI shown here; select the scopes api and refresh_token (Perform requests at any time).',
      'Require PKCE is supported and may stay on; copy the consumer key (client id) and consumer secret.',
      'For a sandbox, set authorizationEndpoint and tokenEndpoint to https://test.salesforce.com/services/oauth2/… in the provider.',
    ],
  },
  provider: {
    type: 'oauth2',
    authorizationEndpoint: 'https://login.salesforce.com/services/oauth2/authorize',
    tokenEndpoint: 'https://login.salesforce.com/services/oauth2/token',
    revocationEndpoint: 'https://login.salesforce.com/services/oauth2/revoke',
    userinfoEndpoint: 'https://login.salesforce.com/services/oauth2/userinfo',
  },
  clientAuthMethod: 'client_secret_post',
  settings: {
    connectionApiBase: {
      from: 'token_response',
      field: 'instance_url',
      hosts: [
        '*.salesforce.com',
        '*.force.com',
        '*.salesforce.mil',
        '*.cloudforce.com',
        '*.sfcrmproducts.cn',
      ],
    },
  },
  defaultScopes: ['api', 'refresh_token'],
  quirks: [
    "Each org has its own API host: the token response's instance_url (for example https://acme.my.salesforce.com) becomes that connection's proxy base URL; it must be https and a Salesforce host (connectionApiBase.hosts).",
    "The token response has no expires_in: access tokens last as long as the org's session timeout, so the service refreshes when the API answers 401, not ahead of time.",
    'The refresh_token scope is what brings a refresh token; refresh tokens do not rotate by default.',
  ],
  integrations: [{ id: 'salesforce', name: 'Salesforce', scopes: ['api', 'refresh_token'] }],
};
