import type { ProviderTemplateInput } from './template.js';

/** HubSpot (a public or private app with OAuth). */
export const hubspot: ProviderTemplateInput = {
  id: 'hubspot',
  name: 'HubSpot',
  registration: {
    console: 'https://developers.hubspot.com/',
    steps: [
      'Create an app in your HubSpot developer account.',
      'Under Auth set the redirect URL to the redirect URI shown here and add the scopes of the integrations you enable (oauth is always needed).',
      'Copy the client id and client secret.',
    ],
  },
  provider: {
    type: 'oauth2',
    authorizationEndpoint: 'https://app.hubspot.com/oauth/authorize',
    tokenEndpoint: 'https://api.hubapi.com/oauth/v1/token',
  },
  clientAuthMethod: 'client_secret_post',
  settings: { tokenResponseShape: 'hubspot' },
  defaultScopes: ['oauth'],
  quirks: [
    'Access tokens last 30 minutes; the refresh token does not change and does not expire until the app is uninstalled.',
    'The client secret goes in the request body (client_secret_post); HubSpot refuses Basic authentication.',
    'Token errors come as {status: "BAD_REFRESH_TOKEN", message} instead of an OAuth error: BAD_REFRESH_TOKEN and BAD_AUTH_CODE mean the user must reconnect, BAD_CLIENT_ID and BAD_CLIENT_SECRET are an admin problem.',
    "The scopes asked for must match the app's required scopes exactly, or HubSpot refuses the authorization.",
  ],
  integrations: [
    {
      id: 'hubspot',
      name: 'HubSpot CRM',
      scopes: ['oauth', 'crm.objects.contacts.read', 'crm.objects.companies.read'],
      api: { baseUrl: 'https://api.hubapi.com' },
    },
  ],
};
