import type { ProviderTemplateInput } from './template.js';

/** Linear. */
export const linear: ProviderTemplateInput = {
  id: 'linear',
  name: 'Linear',
  registration: {
    console: 'https://linear.app/settings/api/applications/new',
    steps: [
      'Create an OAuth application in Linear (Settings, API, OAuth applications).',
      'Add the redirect URI shown here as a callback URL.',
      'Copy the client id and client secret.',
    ],
  },
  provider: {
    type: 'oauth2',
    authorizationEndpoint: 'https://linear.app/oauth/authorize',
    tokenEndpoint: 'https://api.linear.app/oauth/token',
    revocationEndpoint: 'https://api.linear.app/oauth/revoke',
    scopeSeparator: ',',
  },
  clientAuthMethod: 'client_secret_post',
  defaultScopes: ['read'],
  quirks: [
    'Scopes are comma-separated (read,write).',
    'Access tokens expire after 24 hours and come with a refresh token, which rotates on every use; applications created before October 2025 may still get 10-year tokens without a refresh token, which are never refreshed.',
    'The API is GraphQL at https://api.linear.app/graphql.',
  ],
  integrations: [
    { id: 'linear', name: 'Linear', scopes: ['read'], api: { baseUrl: 'https://api.linear.app' } },
  ],
};
