import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { providerTemplates } from '../../src/oauth/templates/index.js';

/** docs/providers/templates.md has a section per template, with its quirks as the code states them. */
describe('docs/providers/templates.md', () => {
  const doc = readFileSync(new URL('../../docs/providers/templates.md', import.meta.url), 'utf8');
  it.each([...providerTemplates().values()].map((t) => [t.id, t] as const))('documents %s', (id, t) => {
    expect(doc).toContain(`## ${t.name} (\`template: ${id}\`)`);
    for (const quirk of t.quirks) expect(doc).toContain(quirk);
  });
});
