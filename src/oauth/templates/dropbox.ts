import type { ProviderTemplateInput } from './template.js';

/** Dropbox. */
export const dropbox: ProviderTemplateInput = {
  id: 'dropbox',
  name: 'Dropbox',
  registration: {
    console: 'https://www.dropbox.com/developers/apps',
    steps: [
      'Create an app (Scoped access; App folder or Full Dropbox).',
      'Under Settings add the redirect URI shown here; copy the app key (client id) and app secret.',
      'Under Permissions tick the scopes of the integrations you enable and submit.',
    ],
  },
  provider: {
    type: 'oauth2',
    authorizationEndpoint: 'https://www.dropbox.com/oauth2/authorize',
    tokenEndpoint: 'https://api.dropboxapi.com/oauth2/token',
  },
  clientAuthMethod: 'client_secret_basic',
  authorizationParams: { token_access_type: 'offline' },
  settings: { accountFromTokenResponse: { id: 'account_id' } },
  defaultScopes: ['account_info.read'],
  quirks: [
    'token_access_type=offline is always sent: without it Dropbox issues only a 4-hour access token and no refresh token.',
    'The refresh token does not expire and does not rotate; access tokens last about 4 hours.',
    'Scopes must also be ticked in the app console, or Dropbox refuses them.',
    "The connected account is the token response's account_id.",
  ],
  integrations: [
    {
      id: 'dropbox',
      name: 'Dropbox',
      scopes: ['account_info.read', 'files.metadata.read', 'files.content.read'],
      api: { baseUrl: 'https://api.dropboxapi.com' },
    },
  ],
};
