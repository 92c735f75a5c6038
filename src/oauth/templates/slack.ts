import type { ProviderTemplateInput } from './template.js';

/** Slack, with user tokens (each person connects their own Slack account). */
export const slack: ProviderTemplateInput = {
  id: 'slack',
  name: 'Slack',
  registration: {
    console: 'https://api.slack.com/apps',
    steps: [
      'Create a Slack app (From scratch) in the workspace that will use it, or distribute it for several workspaces.',
      'Under OAuth & Permissions add the redirect URI shown here, and the User Token Scopes of the integrations you enable.',
      'Optional: turn on token rotation (OAuth & Permissions, Advanced token security) to get expiring tokens with refresh tokens.',
      'Under Basic Information copy the client id and client secret.',
    ],
  },
  provider: {
    type: 'oauth2',
    authorizationEndpoint: 'https://slack.com/oauth/v2/authorize',
    tokenEndpoint: 'https://slack.com/api/oauth.v2.access',
    scopeSeparator: ',',
  },
  clientAuthMethod: 'client_secret_post',
  settings: {
    accountFromTokenResponse: { id: 'id' },
    tokenResponseShape: 'slack',
    scopeParameter: 'user_scope',
  },
  defaultScopes: ['users:read'],
  quirks: [
    "The integration's scopes are user scopes: they are sent as user_scope, and the user token (authed_user in Slack's answer) is what the connection stores.",
    'Slack answers every token request with HTTP 200 and an ok field; {ok:false, error} is read as an OAuth error: invalid_refresh_token, invalid_code, code_already_used and token_revoked mean the user must reconnect, invalid_client_id and bad_client_secret are an admin problem, anything else is retried.',
    "The connected account is the Slack user id from Slack's answer (authed_user.id).",
    'Without token rotation user tokens never expire and come without a refresh token; with rotation they last 12 hours and refresh like any other.',
  ],
  integrations: [
    {
      id: 'slack',
      name: 'Slack',
      scopes: ['channels:read', 'channels:history', 'chat:write', 'users:read'],
      api: { baseUrl: 'https://slack.com/api' },
    },
  ],
};
