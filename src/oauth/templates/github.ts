import type { ProviderTemplateInput } from './template.js';

/** GitHub (an OAuth app, or a GitHub App acting for a user). */
export const github: ProviderTemplateInput = {
  id: 'github',
  name: 'GitHub',
  registration: {
    console: 'https://github.com/settings/developers',
    steps: [
      'Create an OAuth App (or a GitHub App) under Settings, Developer settings; for an organisation, under its settings.',
      'Set the Authorization callback URL to the redirect URI shown here.',
      'Generate a client secret and paste it with the client id.',
      'For a GitHub App: to get refresh tokens, turn on "User-to-server token expiration" (opt-in to expiring tokens).',
    ],
  },
  provider: {
    type: 'oauth2',
    authorizationEndpoint: 'https://github.com/login/oauth/authorize',
    tokenEndpoint: 'https://github.com/login/oauth/access_token',
    userinfoEndpoint: 'https://api.github.com/user',
  },
  clientAuthMethod: 'client_secret_post',
  settings: { tokenResponseShape: 'github' },
  defaultScopes: ['read:user'],
  quirks: [
    'OAuth App tokens do not expire and come without a refresh token: such a connection is never refreshed and never marked broken for lack of one; a 401 from the API reaches the caller as it is.',
    'A GitHub App that opts in to expiring user tokens gets 8-hour access tokens and 6-month refresh tokens, which rotate; those connections refresh like any other.',
    'GitHub answers token errors with HTTP 200 and an error field (bad_refresh_token, bad_verification_code, incorrect_client_credentials): they are read as the OAuth errors they stand for.',
    'Granted scopes come back comma-separated; the account is read from GET https://api.github.com/user (its numeric id and login).',
    'There is no RFC 7009 revocation endpoint: disconnecting deletes the tokens here; revoke the grant in GitHub settings if needed.',
  ],
  integrations: [
    {
      id: 'github',
      name: 'GitHub',
      scopes: ['read:user', 'repo'],
      api: { baseUrl: 'https://api.github.com' },
    },
  ],
};
