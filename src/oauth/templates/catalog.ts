import { atlassian } from './atlassian.js';
import { box } from './box.js';
import { dropbox } from './dropbox.js';
import { entra } from './entra.js';
import { github } from './github.js';
import { google } from './google.js';
import { hubspot } from './hubspot.js';
import { linear } from './linear.js';
import { notion } from './notion.js';
import { salesforce } from './salesforce.js';
import { slack } from './slack.js';
import { type ProviderTemplate, type ProviderTemplateInput, templateSchema } from './template.js';
import { zoom } from './zoom.js';

/** Every template, one file each: the one list to extend for a new provider. */
export const templateSources: readonly ProviderTemplateInput[] = [
  entra,
  google,
  github,
  atlassian,
  slack,
  salesforce,
  hubspot,
  notion,
  linear,
  dropbox,
  box,
  zoom,
];

/** The templates, validated once when first asked for (a broken template file fails every start and test). */
let validated: ReadonlyMap<string, ProviderTemplate> | undefined;

export function providerTemplates(): ReadonlyMap<string, ProviderTemplate> {
  if (validated === undefined) {
    const byId = new Map<string, ProviderTemplate>();
    for (const source of templateSources) {
      const template = Object.freeze(templateSchema.parse(source));
      if (byId.has(template.id)) throw new Error(`duplicate provider template id ${template.id}`);
      byId.set(template.id, template);
    }
    validated = byId;
  }
  return validated;
}

export function getTemplate(id: string): ProviderTemplate | undefined {
  return providerTemplates().get(id);
}
