import type { ProviderTemplateInput } from './template.js';

/** Notion (a public integration). */
export const notion: ProviderTemplateInput = {
  id: 'notion',
  name: 'Notion',
  registration: {
    console: 'https://www.notion.so/profile/integrations',
    steps: [
      'Create a new integration of type Public; choose its capabilities (read content, update content…).',
      'Add the redirect URI shown here under OAuth Domain & URIs.',
      'Copy the OAuth client id and client secret.',
    ],
  },
  provider: {
    type: 'oauth2',
    authorizationEndpoint: 'https://api.notion.com/v1/oauth/authorize',
    tokenEndpoint: 'https://api.notion.com/v1/oauth/token',
  },
  clientAuthMethod: 'client_secret_basic',
  authorizationParams: { owner: 'user' },
  settings: {
    accountFromTokenResponse: {
      id: 'owner.user.id',
      name: 'owner.user.name',
      email: 'owner.user.person.email',
    },
    tokenRequestBody: 'json',
  },
  scopeRule: 'none',
  defaultScopes: [],
  quirks: [
    'Notion has no scopes: what the integration may do is set by its capabilities in Notion, and the user picks the pages to share on the consent screen.',
    'The token request is a JSON body with HTTP Basic client authentication; owner=user is always sent.',
    'Refresh tokens rotate: every refresh returns a new one and the old one stops working.',
    'API calls need a Notion-Version header, which the caller sends through the proxy.',
    "The connected account is the token response's owner.user (id, name, e-mail); there is no userinfo endpoint.",
  ],
  integrations: [{ id: 'notion', name: 'Notion', scopes: [], api: { baseUrl: 'https://api.notion.com' } }],
};
