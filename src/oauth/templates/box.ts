import type { ProviderTemplateInput } from './template.js';

/** Box. */
export const box: ProviderTemplateInput = {
  id: 'box',
  name: 'Box',
  registration: {
    console: 'https://app.box.com/developers/console',
    steps: [
      'Create a Platform App with User Authentication (OAuth 2.0).',
      'Under Configuration add the redirect URI shown here and choose the application scopes.',
      'Copy the client id and client secret.',
    ],
  },
  provider: {
    type: 'oauth2',
    authorizationEndpoint: 'https://account.box.com/api/oauth2/authorize',
    tokenEndpoint: 'https://api.box.com/oauth2/token',
    revocationEndpoint: 'https://api.box.com/oauth2/revoke',
    userinfoEndpoint: 'https://api.box.com/2.0/users/me',
  },
  clientAuthMethod: 'client_secret_post',
  defaultScopes: [],
  quirks: [
    'Access tokens last about 60 minutes; refresh tokens are single use (every refresh returns a new one) and expire after 60 days.',
    'Scopes are set on the app in the Box console; an integration may list a subset (root_readonly, root_readwrite).',
  ],
  integrations: [{ id: 'box', name: 'Box', scopes: [], api: { baseUrl: 'https://api.box.com' } }],
};
