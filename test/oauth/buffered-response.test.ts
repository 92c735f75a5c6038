/**
 * `BufferedResponse` (oauth/buffered-response.ts), the Response `smallFetch` hands to
 * oauth4webapi, behaves as the standard Response does for everything a token client reads: each
 * case runs on both and compares.
 */
import { describe, expect, it } from 'vitest';
import { BufferedResponse } from '../../src/oauth/buffered-response.js';

const init = {
  status: 200,
  headers: [['content-type', 'application/json; charset=utf-8']] as [string, string][],
};
const both = (text: string, options: ResponseInit = init) => [
  new Response(Buffer.from(text), options),
  new BufferedResponse(Buffer.from(text), options),
];

describe('BufferedResponse reads like a standard Response', () => {
  it('is a Response, with its status and headers', () => {
    for (const r of both('{}', { status: 400, statusText: 'Bad Request', headers: { 'x-a': '1' } })) {
      expect(r).toBeInstanceOf(Response);
      expect([r.status, r.statusText, r.ok, r.headers.get('x-a')]).toEqual([400, 'Bad Request', false, '1']);
    }
  });

  it('reads JSON and text, dropping a leading byte order mark as UTF-8 decoding does', async () => {
    const doc = '\uFEFF{"access_token":"é","n":1}';
    const [standard, buffered] = both(doc);
    expect(await buffered!.json()).toEqual(await standard!.json());
    const [t1, t2] = both(doc);
    expect(await t2!.text()).toBe(await t1!.text());
    const [b1, b2] = both(doc);
    expect(Buffer.from(await b2!.arrayBuffer())).toEqual(Buffer.from(await b1!.arrayBuffer()));
  });

  it('rejects JSON that does not parse, as the standard one does', async () => {
    for (const r of both('<html>')) await expect(r.json()).rejects.toThrow(SyntaxError);
  });

  it('is read once: bodyUsed, then a second read fails', async () => {
    for (const r of both('{"a":1}')) {
      expect(r.bodyUsed).toBe(false);
      await r.json();
      expect(r.bodyUsed).toBe(true);
      await expect(r.text()).rejects.toThrow(TypeError);
      expect(() => r.clone()).toThrow(TypeError);
    }
  });

  it('clones before a read, and each copy reads the whole body', async () => {
    for (const r of both('{"error":"invalid_grant"}', { status: 400 })) {
      const copy = r.clone();
      expect(copy.status).toBe(400);
      expect(await copy.json()).toEqual({ error: 'invalid_grant' });
      expect(await r.text()).toBe('{"error":"invalid_grant"}');
    }
  });

  it('gives its body as a stream when asked, and has none for a 204', async () => {
    const buffered = new BufferedResponse(Buffer.from('abc'), init);
    const chunks: Uint8Array[] = [];
    for await (const chunk of buffered.body!) chunks.push(chunk);
    expect(Buffer.concat(chunks).toString()).toBe('abc');
    await expect(buffered.text()).rejects.toThrow(TypeError);
    expect(new BufferedResponse(null, { status: 204 }).body).toBeNull();
    expect(await new BufferedResponse(null, { status: 204 }).text()).toBe('');
  });
});
