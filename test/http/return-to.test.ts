import { describe, expect, it } from 'vitest';
import { Problem } from '../../src/http/problem.js';
import { parseReturnTo } from '../../src/http/return-to.js';

const publicUrl = 'https://connect.nunq.example';

function refusal(value: unknown): Problem {
  try {
    parseReturnTo(value, publicUrl);
  } catch (error) {
    if (error instanceof Problem) return error;
    throw error;
  }
  throw new Error(`accepted ${JSON.stringify(value)}`);
}

describe('parseReturnTo', () => {
  it('accepts same-origin paths with query and fragment', () => {
    expect(parseReturnTo('/', publicUrl)).toBe('/');
    expect(parseReturnTo('/integrations?x=1#top', publicUrl)).toBe('/integrations?x=1#top');
    expect(parseReturnTo('/a/../b', publicUrl)).toBe('/b');
  });

  it('falls back when absent', () => {
    expect(parseReturnTo(undefined, publicUrl)).toBe('/');
    expect(parseReturnTo('', publicUrl)).toBe('/');
    expect(parseReturnTo(null, publicUrl, '/home')).toBe('/home');
  });

  it('refuses anything that could leave the site', () => {
    for (const value of [
      'https://evil.example/',
      'http://connect.nunq.example/',
      '//evil.example',
      '/\\evil.example',
      '\\/evil.example',
      '/x\\y',
      'evil.example',
      'javascript:alert(1)',
      'data:text/html,hi',
      '/x\ny',
      '/x\ty',
      `/${'a'.repeat(2000)}`,
      ['/a'],
      42,
    ]) {
      const problem = refusal(value);
      expect(problem.status).toBe(400);
      expect(problem.code).toBe('return_to_invalid');
      expect(problem.detail).not.toContain(String(value).slice(0, 20));
    }
  });

  it('never returns a path that a browser reads as another host', () => {
    for (const value of [
      '/.//evil.example',
      '/..//evil.example',
      '/a/..//evil.example',
      '/%2e//evil.example',
    ]) {
      let result: string | undefined;
      try {
        result = parseReturnTo(value, publicUrl);
      } catch (error) {
        expect(error).toBeInstanceOf(Problem);
        continue;
      }
      expect(new URL(result, publicUrl).origin, `${value} -> ${result}`).toBe(publicUrl);
      expect(result.startsWith('//'), `${value} -> ${result}`).toBe(false);
    }
  });
});
