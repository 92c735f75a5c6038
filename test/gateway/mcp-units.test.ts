import { PassThrough } from 'node:stream';
import { ErrorCode } from '@modelcontextprotocol/sdk/types.js';
import { describe, expect, it } from 'vitest';
import { insufficientScope } from '../../src/gateway/mcp/challenge.js';
import { type BodyRefusal, parseMessages } from '../../src/gateway/mcp/jsonrpc.js';
import { relayAnswers, type SseEvent, SseParser, SseRelay } from '../../src/gateway/mcp/sse.js';
import { stepUpScopes } from '../../src/gateway/mcp/user-action.js';

const read = async (stream: NodeJS.ReadableStream) => {
  let text = '';
  for await (const chunk of stream) text += String(chunk);
  return text;
};

describe('SseParser', () => {
  it('dispatches events split across chunks and line endings, skipping comments', () => {
    const events: SseEvent[] = [];
    const parser = new SseParser((e) => events.push(e));
    const enc = new TextEncoder();
    parser.feed(enc.encode(': keep-alive\n\nevent: message\nid: 7\nda'));
    expect(parser.atBoundary).toBe(false);
    parser.feed(enc.encode('ta: {"a":1}\r'));
    parser.feed(enc.encode('\ndata: {"b":2}\r\n\r\n'));
    expect(parser.atBoundary).toBe(true);
    parser.feed(enc.encode('data:x\n\n'));
    expect(events).toEqual([
      { event: 'message', id: '7', data: '{"a":1}\n{"b":2}' },
      { event: 'message', id: '7', data: 'x' },
    ]);
  });
});

describe('SseRelay', () => {
  it('passes upstream bytes untouched and puts its own events between upstream events only', async () => {
    const upstream = new PassThrough();
    const relay = new SseRelay();
    const done = relay.relay(upstream);
    const out = read(relay.body);
    upstream.write('event: message\ndata: {"half":');
    relay.send('data: ours\n\n');
    upstream.write('1}\n\n');
    upstream.end();
    expect(await done).toBe('end');
    relay.end();
    expect(await out).toBe('event: message\ndata: {"half":1}\n\ndata: ours\n\n');
  });

  it('answers the requests a dropped stream left unanswered, and only those', async () => {
    const upstream = new PassThrough();
    const relay = relayAnswers(
      upstream,
      [
        { jsonrpc: '2.0', id: 1, method: 'tools/call' },
        { jsonrpc: '2.0', id: 2, method: 'tools/call' },
      ],
      (ids) => ids.map((id) => ({ jsonrpc: '2.0', id, error: { code: -32000, message: 'dropped' } })),
    );
    const out = read(relay.body);
    upstream.write('data: {"jsonrpc":"2.0","id":1,"result":{}}\n\ndata: {"jsonrpc":"2.0","meth');
    upstream.destroy(new Error('socket hang up'));
    const text = await out;
    expect(
      text.startsWith('data: {"jsonrpc":"2.0","id":1,"result":{}}\n\ndata: {"jsonrpc":"2.0","meth\n\n'),
    ).toBe(true);
    expect(text).toContain('data: {"jsonrpc":"2.0","id":2,"error":{"code":-32000,"message":"dropped"}}\n\n');
    expect(text).not.toContain('"id":1,"error"');
  });

  it('leaves a resumable stream that ended cleanly to the client', async () => {
    const upstream = new PassThrough();
    const relay = relayAnswers(upstream, [{ jsonrpc: '2.0', id: 1, method: 'tools/call' }], () => [
      { injected: true },
    ]);
    const out = read(relay.body);
    upstream.end('id: 1\ndata: \n\n');
    expect(await out).toBe('id: 1\ndata: \n\n');
  });
});

describe('parseMessages', () => {
  const refusal = (body: string) => {
    try {
      parseMessages(body);
    } catch (error) {
      return (error as BodyRefusal).rpc.code;
    }
    return undefined;
  };
  it.each([
    ['not json', ErrorCode.ParseError],
    ['', ErrorCode.ParseError],
    ['null', ErrorCode.InvalidRequest],
    ['[]', ErrorCode.InvalidRequest],
    ['{"jsonrpc":"1.0","id":1,"method":"x"}', ErrorCode.InvalidRequest],
    ['{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}', ErrorCode.InvalidParams],
    [
      JSON.stringify(Array.from({ length: 101 }, () => ({ jsonrpc: '2.0', method: 'n' }))),
      ErrorCode.InvalidRequest,
    ],
  ])('refuses %s', (body, code) => {
    expect(refusal(body)).toBe(code);
  });
  it('reads a request, a batch of notification and response', () => {
    expect(parseMessages('{"jsonrpc":"2.0","id":1,"method":"tools/list"}')).toMatchObject({ batch: false });
    const batch = parseMessages('[{"jsonrpc":"2.0","method":"n"},{"jsonrpc":"2.0","id":"a","result":{}}]');
    expect(batch.batch).toBe(true);
    expect(batch.messages).toHaveLength(2);
  });
});

describe('insufficientScope', () => {
  it.each([
    ['Bearer error="insufficient_scope", scope="a b"', ['a', 'b']],
    ['Bearer realm="x", error="insufficient_scope"', []],
    ['Basic realm="x", Bearer error="insufficient_scope", scope="c"', ['c']],
    ['Bearer error="invalid_token"', undefined],
    ['Bearer', undefined],
    ['', undefined],
    ['"garbage', undefined],
  ])('%s', async (header, scopes) => {
    expect((await insufficientScope(header))?.scopes).toEqual(scopes);
  });
});

describe('stepUpScopes', () => {
  it('keeps the granted scopes and adds the challenged ones once', () => {
    expect(stepUpScopes(['openid', 'read'], ['read', 'write'])).toEqual(['openid', 'read', 'write']);
  });
});
