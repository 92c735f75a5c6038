import type { ProviderTemplateInput } from './template.js';

/** Zoom (a general, user-managed OAuth app). */
export const zoom: ProviderTemplateInput = {
  id: 'zoom',
  name: 'Zoom',
  registration: {
    console: 'https://marketplace.zoom.us/develop/create',
    steps: [
      'Create a General app (user-managed) in the Zoom App Marketplace.',
      'Set the OAuth redirect URL and add it to the OAuth allow list: the redirect URI shown here.',
      'Add the scopes of the integrations you enable; copy the client id and client secret.',
    ],
  },
  provider: {
    type: 'oauth2',
    authorizationEndpoint: 'https://zoom.us/oauth/authorize',
    tokenEndpoint: 'https://zoom.us/oauth/token',
    revocationEndpoint: 'https://zoom.us/oauth/revoke',
    userinfoEndpoint: 'https://api.zoom.us/v2/users/me',
  },
  clientAuthMethod: 'client_secret_basic',
  defaultScopes: [],
  quirks: [
    'The token endpoint takes the client id and secret as HTTP Basic authentication only.',
    'Access tokens last one hour; every refresh returns a new refresh token (rotation), which lasts 90 days.',
    'Scopes are set on the app; an integration may list them (user:read:user, meeting:read:list_meetings); the account is read from GET https://api.zoom.us/v2/users/me, which needs user:read:user.',
  ],
  integrations: [
    { id: 'zoom', name: 'Zoom', scopes: ['user:read:user'], api: { baseUrl: 'https://api.zoom.us/v2' } },
  ],
};
