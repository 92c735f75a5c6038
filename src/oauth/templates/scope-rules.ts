import { ProviderError } from '../errors.js';
import { entraScopes } from '../providers/entra.js';
import { getTemplate } from './catalog.js';

/**
 * Why an integration of a provider made from `templateId` cannot ask for `scopes`, in words for
 * the admin (no value quoted), or undefined when it can (or the provider has no template). Lets
 * the config and the admin API refuse such an integration when it is saved, not when a user
 * first connects.
 */
export function integrationScopeProblem(
  templateId: string | undefined,
  scopes: readonly string[],
): string | undefined {
  const rule = templateId === undefined ? undefined : getTemplate(templateId)?.scopeRule;
  if (rule === 'none' && scopes.length > 0) {
    return `must be empty: ${getTemplate(templateId!)?.name} has no scopes (what the integration may do is set at the provider)`;
  }
  if (rule === 'one_resource') {
    try {
      entraScopes(scopes);
    } catch (error) {
      if (error instanceof ProviderError)
        return 'must name one resource only (Entra issues one access token per API)';
      throw error;
    }
  }
  return undefined;
}
