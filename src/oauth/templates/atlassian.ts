import type { ProviderTemplateInput } from './template.js';

/** Atlassian Cloud (Jira, Confluence) through OAuth 2.0 (3LO). */
export const atlassian: ProviderTemplateInput = {
  id: 'atlassian',
  name: 'Atlassian (Jira, Confluence)',
  registration: {
    console: 'https://developer.atlassian.com/console/myapps/',
    steps: [
      'Create an OAuth 2.0 integration in the developer console.',
      'Under Permissions add the Jira API and/or Confluence API with the scopes of the integrations you enable.',
      'Under Authorization set the callback URL to the redirect URI shown here.',
      'Under Settings copy the client id and secret.',
    ],
  },
  provider: {
    type: 'oauth2',
    authorizationEndpoint: 'https://auth.atlassian.com/authorize',
    tokenEndpoint: 'https://auth.atlassian.com/oauth/token',
    userinfoEndpoint: 'https://api.atlassian.com/me',
  },
  clientAuthMethod: 'client_secret_post',
  authorizationParams: { audience: 'api.atlassian.com', prompt: 'consent' },
  settings: {
    connectionApiBase: {
      from: 'accessible_resources',
      url: 'https://api.atlassian.com/oauth/token/accessible-resources',
    },
  },
  defaultScopes: ['offline_access', 'read:me'],
  quirks: [
    'Every authorization request carries audience=api.atlassian.com and prompt=consent; offline_access brings a refresh token.',
    'Refresh tokens rotate on every use and expire after 90 days without use.',
    "APIs are called per site: after Connect the service asks GET https://api.atlassian.com/oauth/token/accessible-resources for the sites granted and stores the first site's cloud id on the connection; its proxy base becomes the integration's api.baseUrl followed by /{cloudid} (https://api.atlassian.com/ex/jira/{cloudid}).",
    "A user who belongs to several sites picks one on Atlassian's consent screen; to use another, Reconnect and pick it.",
  ],
  integrations: [
    {
      id: 'jira',
      name: 'Jira',
      scopes: ['offline_access', 'read:me', 'read:jira-work', 'read:jira-user'],
      api: { baseUrl: 'https://api.atlassian.com/ex/jira' },
    },
    {
      id: 'confluence',
      name: 'Confluence',
      scopes: ['offline_access', 'read:me', 'read:confluence-content.all', 'search:confluence'],
      api: { baseUrl: 'https://api.atlassian.com/ex/confluence' },
    },
  ],
};
