import { describe, expect, it } from 'vitest';
import { parseConfig, rateLimitCategories, rateLimitDefaults } from '../../src/config/index.js';
import { minimalYaml, problemsOf } from './fixtures/helpers.js';

const parse = (yaml: string, env: Record<string, string> = {}) => parseConfig(`${minimalYaml()}${yaml}`, env);
const problems = (yaml: string) => problemsOf(() => parse(yaml));

describe('the rateLimits section', () => {
  it('is optional: every category gets its defaults, all enabled', () => {
    const { rateLimits } = parse('');
    expect(rateLimits.enabled).toBe(true);
    for (const category of rateLimitCategories) {
      expect(rateLimits[category]).toEqual({ enabled: true, ...rateLimitDefaults[category] });
    }
    expect(rateLimits.proxy).toEqual({ enabled: true, windowSeconds: 10, perUser: 1000, perAddress: 10_000 });
  });

  it('keeps the defaults of the fields a category leaves out; 0 and enabled: false are taken', () => {
    const { rateLimits } = parse(`rateLimits:
  proxy: { perUser: 50 }
  api: { perAddress: 0, windowSeconds: "5" }
  gateway: { enabled: "false" }
`);
    expect(rateLimits.proxy).toEqual({ ...rateLimitDefaults.proxy, enabled: true, perUser: 50 });
    expect(rateLimits.api).toEqual({
      ...rateLimitDefaults.api,
      enabled: true,
      perAddress: 0,
      windowSeconds: 5,
    });
    expect(rateLimits.gateway.enabled).toBe(false);
    expect(parse('rateLimits: { enabled: false }\n').rateLimits.enabled).toBe(false);
  });

  it('names each bad field', () => {
    expect(
      problems(`rateLimits:
  enabled: sometimes
  proxy: { perUser: -1 }
  api: { windowSeconds: 0 }
  callback: { perAddress: 1.5 }
  signIn: { perMinute: 5 }
  pages: 3
`),
    ).toEqual([
      'rateLimits.enabled: must be true or false, not a string',
      'rateLimits.signIn.perMinute: unknown field "perMinute"',
      'rateLimits.callback.perAddress: must be an integer, not a number',
      'rateLimits.api.windowSeconds: must be at least 1',
      'rateLimits.proxy.perUser: must be at least 0',
      'rateLimits.pages: must be a mapping, not an integer',
    ]);
    expect(problems('rateLimits: { gateway: { windowSeconds: 86401 } }\n')).toEqual([
      'rateLimits.gateway.windowSeconds: must be at most 86400',
    ]);
    expect(problems('rateLimits: { perUser: 5 }\n')).toEqual(['rateLimits.perUser: unknown field "perUser"']);
  });
});
