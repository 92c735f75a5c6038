import type { ProviderTemplateInput } from './template.js';

/** Microsoft Entra ID v2.0 (work and school accounts), with SharePoint, OneDrive and Business Central. */
export const entra: ProviderTemplateInput = {
  id: 'entra',
  name: 'Microsoft Entra ID',
  registration: {
    console: 'https://entra.microsoft.com/#view/Microsoft_AAD_RegisteredApps/ApplicationsListBlade',
    steps: [
      'Register an application (App registrations, New registration); supported account types: this organisation only (single tenant) or any organisation (multi-tenant).',
      'Add a Web platform redirect URI: the redirect URI shown here.',
      'Under Certificates & secrets create a client secret and paste its value (not its id); note when it expires.',
      'Under API permissions add the delegated permissions of the integrations you enable (Microsoft Graph Sites.Read.All, Files.ReadWrite; Dynamics 365 Business Central user_impersonation), then grant admin consent or send the admin-consent link.',
      'Set tenant to your tenant id for a single-tenant app, or organizations for a multi-tenant one.',
    ],
  },
  provider: { type: 'entra', tenant: 'organizations', authority: 'https://login.microsoftonline.com' },
  clientAuthMethod: 'client_secret_post',
  scopeRule: 'one_resource',
  defaultScopes: ['offline_access', 'User.Read'],
  quirks: [
    'Entra issues one access token per resource: an integration asks for the scopes of one API only (Graph or Business Central), never both.',
    'openid, profile and offline_access are always added: offline_access is what brings a refresh token.',
    'Refresh tokens rotate on every use and expire after 90 days without use, so idle connections are refreshed weekly.',
    'Client secrets expire (at most 24 months): an expired one shows up as an admin notification, and every connection keeps working once a new secret is saved.',
    'A tenant-wide admin consent link (/{tenant}/v2.0/adminconsent) lets an administrator consent for the whole organisation, so users are not asked.',
  ],
  integrations: [
    {
      id: 'sharepoint',
      name: 'SharePoint',
      scopes: ['offline_access', 'https://graph.microsoft.com/Sites.Read.All'],
      api: { baseUrl: 'https://graph.microsoft.com' },
    },
    {
      id: 'onedrive',
      name: 'OneDrive',
      scopes: ['offline_access', 'https://graph.microsoft.com/Files.ReadWrite'],
      api: { baseUrl: 'https://graph.microsoft.com' },
    },
    {
      id: 'business-central',
      name: 'Business Central',
      scopes: ['offline_access', 'https://api.businesscentral.dynamics.com/user_impersonation'],
      api: { baseUrl: 'https://api.businesscentral.dynamics.com' },
    },
  ],
};
