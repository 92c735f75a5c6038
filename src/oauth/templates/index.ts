// Provider templates: data in the code, one validated file per provider (docs/providers/templates.md).
export { type AdminConsentInput, entraAdminConsentUrl } from './admin-consent.js';
export { applyTemplate, TemplateError } from './apply.js';
export { getTemplate, providerTemplates, templateSources } from './catalog.js';
export { integrationScopeProblem } from './scope-rules.js';
export type { ConnectionApiBase, ProviderTemplate, TokenResponseShape } from './template.js';
