import { getTemplate, providerTemplates } from './catalog.js';

/** A template that cannot be applied: `field` names the provider field at fault (`template`, `type`). */
export class TemplateError extends Error {
  readonly code = 'template_invalid';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

type ProviderInput = Readonly<Record<string, unknown>>;

/**
 * The provider config a template gives, with `input`'s fields over it: type and endpoints (or
 * issuer, or tenant and authority), client authentication, authorization and token parameters
 * (merged key by key, `input` winning), and the quirk settings. The result is not yet validated:
 * it goes through the config's provider schema like any hand-written provider. `input.template`,
 * if present, is ignored in favour of `templateId`.
 */
export function applyTemplate(templateId: string, input: ProviderInput): Record<string, unknown> {
  const template = getTemplate(templateId);
  if (template === undefined) {
    throw new TemplateError(
      'template',
      `must be one of the known templates: ${[...providerTemplates().keys()].join(', ')}`,
    );
  }
  const { template: _ignored, authorizationParams, tokenParams, ...own } = input;
  if (own.type !== undefined && own.type !== template.provider.type) {
    throw new TemplateError(
      'type',
      `must be ${template.provider.type} for template ${template.id} (or left out)`,
    );
  }
  // A private key given without a method means private_key_jwt (the schema's default), not the template's secret method.
  const clientAuth = own.privateKey === undefined ? { clientAuthMethod: template.clientAuthMethod } : {};
  const params = (fromTemplate: Record<string, string> | undefined, given: unknown) => {
    const merged = { ...(fromTemplate ?? {}), ...(isRecord(given) ? given : {}) };
    return given !== undefined && !isRecord(given)
      ? given
      : Object.keys(merged).length === 0
        ? undefined
        : merged;
  };
  const authorization = params(template.authorizationParams, authorizationParams);
  const token = params(template.tokenParams, tokenParams);
  return {
    ...template.provider,
    ...clientAuth,
    ...template.settings,
    ...own,
    ...(authorization === undefined ? {} : { authorizationParams: authorization }),
    ...(token === undefined ? {} : { tokenParams: token }),
    template: template.id,
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
