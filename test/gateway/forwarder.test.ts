import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { describe, expect, it } from 'vitest';
import { ForwardError, type ForwardToken, forward } from '../../src/gateway/forwarder.js';
import { OutboundBlockedError, type OutboundRequest } from '../../src/oauth/outbound.js';

/** A fake transport (the unit tier may fake the network): answers in turn, records what it was asked. */
function fakeSend(answers: Array<{ status: number; headers?: Record<string, string> } | Error>) {
  const sent: Array<{ method: string; path: string; authorization: string | undefined; body: unknown }> = [];
  const send: OutboundRequest = async (target, options) => {
    sent.push({
      method: options.method,
      path: target.path,
      authorization: options.headers.authorization,
      body: options.body,
    });
    const next = answers.shift();
    if (next === undefined) throw new Error('no answer left');
    if (next instanceof Error) throw next;
    return {
      statusCode: next.status,
      headers: next.headers ?? {},
      body: Object.assign(Readable.from([Buffer.from('{}')]), { dump: async () => {} }),
    } as unknown as Dispatcher.ResponseData;
  };
  return { send, sent };
}

const target = { origin: new URL('http://api.example'), path: '/v1/x' };
const tokens = () => {
  const asked: Array<string | undefined> = [];
  let n = 0;
  const tokenFor = async (rejected?: ForwardToken) => {
    asked.push(rejected?.value);
    n++;
    return { value: `t${n}`, authorization: `Bearer t${n}` };
  };
  return { tokenFor, asked };
};

describe('the forwarder', () => {
  it('sends with the connection token and answers with the caller-safe headers', async () => {
    const { send, sent } = fakeSend([
      {
        status: 200,
        headers: { 'content-type': 'text/html', 'set-cookie': 'a=1', 'access-control-allow-origin': '*' },
      },
    ]);
    const t = tokens();
    const r = await forward(send, { target, method: 'GET', headers: { accept: '*/*' } }, t.tokenFor);
    expect(sent).toEqual([{ method: 'GET', path: '/v1/x', authorization: 'Bearer t1', body: undefined }]);
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toBe('text/html');
    expect(r.headers['set-cookie']).toBeUndefined();
    expect(r.headers['access-control-allow-origin']).toBeUndefined();
    expect(r.headers['content-security-policy']).toContain('sandbox');
  });

  it('retries a 401 once with a refreshed token when the body can be sent again', async () => {
    const { send, sent } = fakeSend([{ status: 401 }, { status: 401 }]);
    const t = tokens();
    const body = Buffer.from('{"a":1}');
    const r = await forward(send, { target, method: 'POST', headers: {}, body }, t.tokenFor);
    expect(r.statusCode).toBe(401);
    expect(sent.map((s) => s.authorization)).toEqual(['Bearer t1', 'Bearer t2']);
    expect(sent.map((s) => s.body)).toEqual([body, body]);
    expect(t.asked).toEqual([undefined, 't1']);
  });

  it('passes a 401 through without asking again when the token service hands out the same token', async () => {
    const { send, sent } = fakeSend([
      { status: 401, headers: { 'www-authenticate': 'Bearer error="insufficient_scope"' } },
    ]);
    const asked: Array<string | undefined> = [];
    const same = async (rejected?: ForwardToken) => {
      asked.push(rejected?.value);
      return { value: 't1', authorization: 'Bearer t1' };
    };
    const r = await forward(send, { target, method: 'GET', headers: {} }, same);
    expect(r.statusCode).toBe(401);
    expect(r.headers['www-authenticate']).toBe('Bearer error="insufficient_scope"');
    expect(sent).toHaveLength(1);
    expect(asked).toEqual([undefined, 't1']);
  });

  it('does not retry a streamed body', async () => {
    const { send, sent } = fakeSend([{ status: 401 }]);
    const t = tokens();
    const r = await forward(
      send,
      { target, method: 'PUT', headers: {}, body: Readable.from(['x']) },
      t.tokenFor,
    );
    expect(r.statusCode).toBe(401);
    expect(sent).toHaveLength(1);
  });

  it.each(['TRACE', 'TRACK', 'CONNECT'])('never sends %s, nor asks for a token', async (method) => {
    const { send, sent } = fakeSend([{ status: 200 }]);
    const t = tokens();
    await expect(forward(send, { target, method, headers: {} }, t.tokenFor)).rejects.toMatchObject({
      code: 'method_not_allowed',
    });
    expect(sent).toEqual([]);
    expect(t.asked).toEqual([]);
  });

  it('reports a refusal by the outbound policy, a timeout and an unreachable API as data', async () => {
    const cases: Array<[Error, string]> = [
      [new TypeError('fetch failed', { cause: new OutboundBlockedError('refused') }), 'outbound_blocked'],
      [Object.assign(new Error('headers'), { code: 'UND_ERR_HEADERS_TIMEOUT' }), 'upstream_timeout'],
      [Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }), 'upstream_unreachable'],
    ];
    for (const [error, code] of cases) {
      const { send } = fakeSend([error]);
      const failure = await forward(send, { target, method: 'GET', headers: {} }, tokens().tokenFor).catch(
        (e: unknown) => e,
      );
      expect(failure).toBeInstanceOf(ForwardError);
      expect((failure as ForwardError).code).toBe(code);
    }
  });

  it('answers a 204 or 304 without a body or Content-Length', async () => {
    for (const status of [204, 304]) {
      const { send } = fakeSend([{ status, headers: { 'content-length': '11', etag: '"v"' } }]);
      const r = await forward(send, { target, method: 'GET', headers: {} }, tokens().tokenFor);
      expect(r.body).toBeUndefined();
      expect(r.headers['content-length']).toBeUndefined();
      expect(r.headers.etag).toBe('"v"');
    }
  });
});
