import type { ProviderTemplateInput } from './template.js';

/** Google Workspace (and consumer Google accounts) through Google's OpenID Connect provider. */
export const google: ProviderTemplateInput = {
  id: 'google',
  name: 'Google Workspace',
  registration: {
    console: 'https://console.cloud.google.com/apis/credentials',
    steps: [
      'Configure the OAuth consent screen (Internal for your Workspace only, or External) and add the scopes of the integrations you enable.',
      'Create an OAuth client ID of type Web application with the redirect URI shown here as an authorised redirect URI.',
      'Enable the APIs you use (Gmail API, Google Drive API, Google Calendar API) in the same project.',
    ],
  },
  provider: { type: 'oidc', issuer: 'https://accounts.google.com' },
  clientAuthMethod: 'client_secret_post',
  authorizationParams: { access_type: 'offline', prompt: 'consent' },
  defaultScopes: ['openid', 'email', 'profile'],
  quirks: [
    'Google returns a refresh token only with access_type=offline, and only on a consent screen: prompt=consent makes every Connect and Reconnect show it, so a Reconnect always brings a new refresh token.',
    'A refresh keeps the same refresh token (no rotation); Google allows about 100 refresh tokens per user and client, the oldest are dropped silently.',
    'Apps in Testing publishing status get refresh tokens that expire after 7 days: publish the app (or make it Internal) before real use.',
    'Sensitive and restricted scopes (Gmail, Drive) need Google verification for External apps.',
  ],
  integrations: [
    {
      id: 'gmail',
      name: 'Gmail',
      scopes: ['openid', 'email', 'https://www.googleapis.com/auth/gmail.readonly'],
      api: { baseUrl: 'https://gmail.googleapis.com' },
    },
    {
      id: 'google-drive',
      name: 'Google Drive',
      scopes: ['openid', 'email', 'https://www.googleapis.com/auth/drive.readonly'],
      api: { baseUrl: 'https://www.googleapis.com/drive/v3' },
    },
    {
      id: 'google-calendar',
      name: 'Google Calendar',
      scopes: ['openid', 'email', 'https://www.googleapis.com/auth/calendar.readonly'],
      api: { baseUrl: 'https://www.googleapis.com/calendar/v3' },
    },
  ],
};
