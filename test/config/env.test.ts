// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these strings hold ${ENV} references, not templates
import { describe, expect, it } from 'vitest';
import { substituteEnv } from '../../src/config/index.js';

describe('substituteEnv', () => {
  it('substitutes in every string of nested mappings and lists, leaving keys and other values alone', () => {
    const input = {
      a: 'x-${ONE}-${TWO}',
      '${ONE}': 'key stays',
      list: [1, true, null, '${TWO}', { deep: '${ONE}' }],
    };
    const { value, issues } = substituteEnv(input, { ONE: '1', TWO: 'two' });
    expect(issues).toEqual([]);
    expect(value).toEqual({
      a: 'x-1-two',
      '${ONE}': 'key stays',
      list: [1, true, null, 'two', { deep: '1' }],
    });
    expect(input.a).toBe('x-${ONE}-${TWO}');
  });

  it('turns $${ into a literal ${ without substituting what follows', () => {
    const { value, issues } = substituteEnv(
      { a: 'p$${HOME}q', b: '$$${X}', c: 'cost: $$5' },
      { HOME: '/h', X: 'x' },
    );
    expect(issues).toEqual([]);
    expect(value).toEqual({ a: 'p${HOME}q', b: '$${X}', c: 'cost: $$5' });
  });

  it('does not scan substituted text again', () => {
    const { value } = substituteEnv({ a: '${OUTER}' }, { OUTER: '${INNER}', INNER: 'leaked' });
    expect(value).toEqual({ a: '${INNER}' });
  });

  it('reports each unset variable at its field path, naming the variable only', () => {
    const { value, issues } = substituteEnv(
      { providers: [{ clientSecret: 'ok' }, { clientSecret: '${MISSING_ONE}', list: ['${MISSING_TWO}'] }] },
      { SET: 'value-of-set' },
    );
    expect(issues).toEqual([
      { path: 'providers[1].clientSecret', message: 'environment variable MISSING_ONE is not set' },
      { path: 'providers[1].list[0]', message: 'environment variable MISSING_TWO is not set' },
    ]);
    expect(value).toEqual({ providers: [{ clientSecret: 'ok' }, { clientSecret: '', list: [''] }] });
  });

  it('treats a variable set to the empty string as set', () => {
    expect(substituteEnv({ a: '<${EMPTY}>' }, { EMPTY: '' })).toEqual({ value: { a: '<>' }, issues: [] });
  });

  it('reports a malformed reference instead of passing it through silently', () => {
    const { issues } = substituteEnv({ a: 'x${1BAD}', b: 'y${unterminated' }, {});
    expect(issues.map((issue) => issue.path)).toEqual(['a', 'b']);
    expect(issues[0]?.message).toMatch(/malformed/);
  });

  it('reports a root string at (root)', () => {
    expect(substituteEnv('${NOPE}', {}).issues).toEqual([
      { path: '(root)', message: 'environment variable NOPE is not set' },
    ]);
  });
});
