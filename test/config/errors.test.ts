import { describe, expect, it } from 'vitest';
import { ConfigError, formatPath } from '../../src/config/index.js';

describe('formatPath', () => {
  it('joins keys with dots and writes indexes in brackets', () => {
    expect(formatPath(['providers', 1, 'clientSecret'])).toBe('providers[1].clientSecret');
    expect(formatPath(['encryption', 'keys', 0, 'id'])).toBe('encryption.keys[0].id');
    expect(formatPath([0, 'a'])).toBe('[0].a');
  });

  it('quotes keys that would make the path ambiguous, and names the root', () => {
    expect(formatPath(['tokenParams', 'a.b'])).toBe('tokenParams["a.b"]');
    expect(formatPath(['x', 'has space'])).toBe('x["has space"]');
    expect(formatPath([])).toBe('(root)');
  });
});

describe('ConfigError', () => {
  it('carries a stable code, the issues and one line per issue', () => {
    const error = new ConfigError([
      { path: 'server.port', message: 'must be at most 65535' },
      { path: 'encryption', message: 'required' },
    ]);
    expect(error).toBeInstanceOf(Error);
    expect(error.code).toBe('config_invalid');
    expect(error.name).toBe('ConfigError');
    expect(error.format()).toBe('server.port: must be at most 65535\nencryption: required');
    expect(error.message).toBe(`invalid configuration (2 problems):\n${error.format()}`);
  });
});
