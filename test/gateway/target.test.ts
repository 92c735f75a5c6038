import { describe, expect, it } from 'vitest';
import { resolveUpstreamTarget, type TargetRefusal } from '../../src/gateway/target.js';

const base = 'https://api.example/v1';
const resolve = (rest: string) => resolveUpstreamTarget(base, rest);

describe('the proxy target resolver', () => {
  const refused: Array<[string, TargetRefusal]> = [
    // Dot segments, raw and percent-encoded, with matrix parameters.
    ['/../../x', 'dot_segment'],
    ['/a/../../x', 'dot_segment'],
    ['/%2e%2e/x', 'dot_segment'],
    ['/%2E%2E/%2e%2e/x', 'dot_segment'],
    ['/.%2e/x', 'dot_segment'],
    ['/..;/x', 'dot_segment'],
    ['/a/..;jsessionid=1/../x', 'dot_segment'],
    ['/..%3b/x', 'dot_segment'],
    ['/.;/x', 'dot_segment'],
    ['/./x', 'dot_segment'],
    ['/x/.', 'dot_segment'],
    ['/..', 'dot_segment'],
    ['/..%2f..%2fadmin', 'dot_segment'],
    ['/a/..%2F..%2Fadmin', 'dot_segment'],
    // Only dots once trimmed: `..%20`, `%20..`, tab, `...`.
    ['/..%20/x', 'dot_segment'],
    ['/%20../x', 'dot_segment'],
    ['/..%20', 'dot_segment'],
    ['/..%c2%a0/x', 'dot_segment'],
    ['/...//x', 'dot_segment'],
    ['/..../x', 'dot_segment'],
    // Only dots once NFKC-normalised: fullwidth full stop, one dot leader, small full stop.
    ['/%ef%bc%8e%ef%bc%8e/x', 'dot_segment'],
    ['/.%ef%bc%8e/x', 'dot_segment'],
    ['/%e2%80%a4%e2%80%a4/x', 'dot_segment'],
    ['/%ef%b9%92%ef%b9%92/x', 'dot_segment'],
    // A fullwidth solidus becomes a slash under NFKC: `..／x` hides a `..` segment.
    ['/..%ef%bc%8fx', 'dot_segment'],
    // Not shortest-form UTF-8: overlong dots and slashes, surrogates, truncated sequences.
    ['/%c0%ae%c0%ae/x', 'not_utf8'],
    ['/%C1%9C/x', 'not_utf8'],
    ['/%e0%80%ae%e0%80%ae/x', 'not_utf8'],
    ['/%f0%80%80%ae/x', 'not_utf8'],
    ['/%ed%a0%80/x', 'not_utf8'],
    ['/%e2%80/x', 'not_utf8'],
    ['/%ff/x', 'not_utf8'],
    // Not percent-encoding at all: `%u`, a stray `%`, one hex digit.
    ['/%u002e%u002e/x', 'bad_percent_encoding'],
    ['/%%32%65%%32%65/x', 'bad_percent_encoding'],
    ['/100%/x', 'bad_percent_encoding'],
    ['/a%2', 'bad_percent_encoding'],
    ['/a%zz', 'bad_percent_encoding'],
    // What only a second decoding makes a dot, a slash or an overlong form.
    ['/%252e%252e/x', 'double_encoded'],
    ['/..%252fx', 'double_encoded'],
    ['/%25c0%25ae%25c0%25ae/x', 'double_encoded'],
    ['/%25u002e%25u002e/x', 'double_encoded'],
    ['/%25%32%65%25%32%65/x', 'double_encoded'],
    // Backslashes and controls, raw or encoded (raw ones cannot even be sent).
    ['/..%5cx', 'backslash'],
    ['/a\\b', 'backslash'],
    ['/a%00b', 'control_character'],
    ['/a%0d%0aX-Injected:%201', 'control_character'],
    ['/a%7f', 'control_character'],
    ['/a%c2%85', 'control_character'],
    ['/x?q=%0d%0aX-Injected:%201', 'control_character'],
    ['/a b', 'not_ascii'],
    ['/caf\u00e9', 'not_ascii'],
    // Another host: absolute URLs, protocol-relative paths, userinfo tricks.
    ['/http://evil.example/x', 'leaves_base'],
    ['/http:%2F%2Fevil.example/x', 'leaves_base'],
    ['//evil.example/x', 'leaves_base'],
    ['/%2fevil.example/x', 'leaves_base'],
    ['/@evil.example/x', 'leaves_base'],
    ['/x@evil.example/x', 'leaves_base'],
    ['/%40evil.example/x', 'leaves_base'],
  ];

  it.each(refused)('refuses %s (%s)', (rest, refusal) => {
    expect(resolve(rest)).toEqual({ ok: false, refusal });
  });

  const accepted: Array<[string, string]> = [
    ['', '/v1/'],
    ['/', '/v1/'],
    ['/items', '/v1/items'],
    ['/items?x=1&y=%2e%2e', '/v1/items?x=1&y=%2e%2e'],
    ['/users/me/messages?$top=5', '/v1/users/me/messages?$top=5'],
    ['/a%20b', '/v1/a%20b'],
    ['/%C3%A9t%C3%A9', '/v1/%C3%A9t%C3%A9'],
    ['/%F0%9F%98%80', '/v1/%F0%9F%98%80'],
    ['/.well-known/openid-configuration', '/v1/.well-known/openid-configuration'],
    ['/compare/main...feature', '/v1/compare/main...feature'],
    ['/a..b/c.', '/v1/a..b/c.'],
    ['/items;v=1', '/v1/items;v=1'],
    ['/~user/file.txt', '/v1/~user/file.txt'],
    ['/a/b%2fc', '/v1/a/b%2fc'],
    ['/data/100%25', '/v1/data/100%25'],
    ['/data/100%25zz', '/v1/data/100%25zz'],
    ['/users/x@example.com', '/v1/users/x@example.com'],
    ['/x#fragment', '/v1/x'],
    ['?only=query', '/v1/?only=query'],
  ];

  it.each(accepted)('sends %s as %s, never re-normalised', (rest, path) => {
    const result = resolve(rest);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.target.path).toBe(path);
    expect(result.target.origin.href).toBe('https://api.example/');
  });

  it('keeps under the base path whatever the base URL ends with', () => {
    for (const b of ['https://api.example', 'https://api.example/', 'https://api.example/v2/']) {
      const r = resolveUpstreamTarget(b, '/x');
      expect(r.ok && r.target.path).toBe(b.endsWith('v2/') ? '/v2/x' : '/x');
    }
  });
});
