import { PassThrough, Readable } from 'node:stream';
import { ErrorCode, JSONRPCMessageSchema } from '@modelcontextprotocol/sdk/types.js';
import { describe, expect, it } from 'vitest';
import { AgentCalls } from '../../src/gateway/mcp/agent-calls.js';
import { type GatewayAnswer, isEventStream, isJson } from '../../src/gateway/mcp/answers.js';
import { insufficientScope } from '../../src/gateway/mcp/challenge.js';
import { type BodyRefusal, parseMessages, plainlyValid } from '../../src/gateway/mcp/jsonrpc.js';
import type { Call, RoutedCallsDeps } from '../../src/gateway/mcp/routed-call.js';
import { relayStream } from '../../src/gateway/mcp/routed-stream.js';
import type { GatewaySession } from '../../src/gateway/mcp/sessions.js';
import { relayAnswers, type SseEvent, SseParser, SseRelay } from '../../src/gateway/mcp/sse.js';
import { upstreamTarget } from '../../src/gateway/mcp/upstream.js';
import { stepUpScopes } from '../../src/gateway/mcp/user-action.js';
import type { IntegrationRecord } from '../../src/store/repos/catalog.js';
import type { ConnectionRow } from '../../src/store/types.js';

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

describe('plainlyValid (the hand check in front of the SDK schema)', () => {
  const accepted = [
    { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { text: 'x' } } },
    { jsonrpc: '2.0', id: 'a', method: 'tools/list' },
    { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'slow', _meta: { progressToken: 7 } } },
    { jsonrpc: '2.0', method: 'notifications/initialized' },
    { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 3, reason: 'r' } },
    { jsonrpc: '2.0', id: 'r-1', result: { action: 'accept', content: { name: 'G' } } },
    { jsonrpc: '2.0', id: 4, error: { code: -32600, message: 'no', data: { x: 1 } } },
    { jsonrpc: '2.0', error: { code: -32700, message: 'parse' } },
  ];
  // Shapes the hand check must refuse or leave to the schema (which decides either way).
  const doubtful = [
    null,
    [],
    'x',
    { id: 1, method: 'm' },
    { jsonrpc: '1.0', id: 1, method: 'm' },
    { jsonrpc: '2.0', id: 1.5, method: 'm' },
    { jsonrpc: '2.0', id: null, method: 'm' },
    { jsonrpc: '2.0', id: 2 ** 60, method: 'm' },
    { jsonrpc: '2.0', id: true, method: 'm' },
    { jsonrpc: '2.0', id: 1, method: 7 },
    { jsonrpc: '2.0', id: 1, method: 'm', params: null },
    { jsonrpc: '2.0', id: 1, method: 'm', params: [1] },
    { jsonrpc: '2.0', id: 1, method: 'm', params: { _meta: { progressToken: 1.5 } } },
    { jsonrpc: '2.0', id: 1, method: 'm', params: { _meta: { 'io.modelcontextprotocol/related-task': {} } } },
    { jsonrpc: '2.0', id: 1, method: 'm', extra: true },
    { jsonrpc: '2.0', id: 1, method: 'm', result: {} },
    { jsonrpc: '2.0', result: {} },
    { jsonrpc: '2.0', id: 1, result: [] },
    { jsonrpc: '2.0', id: 1, result: {}, error: { code: 1, message: 'm' } },
    { jsonrpc: '2.0', id: 1, error: { code: 1.5, message: 'm' } },
    { jsonrpc: '2.0', id: 1, error: { code: 1 } },
    { jsonrpc: '2.0', id: 1, error: { code: 1, message: 'm', more: 1 } },
    { jsonrpc: '2.0', id: 1 },
    { jsonrpc: '2.0' },
  ];
  it('accepts the common shapes, each one the schema accepts unchanged', () => {
    for (const item of accepted) {
      expect(plainlyValid(item)).toBe(true);
      const parsed = JSONRPCMessageSchema.safeParse(item);
      expect(parsed.success).toBe(true);
      expect(parsed.data).toEqual(item);
    }
  });
  it('never accepts what the schema refuses', () => {
    for (const item of doubtful) {
      if (plainlyValid(item)) expect(JSONRPCMessageSchema.safeParse(item).success).toBe(true);
    }
    expect(doubtful.filter((item) => plainlyValid(item))).toEqual([]);
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

describe('AgentCalls: a running call and its cancellation', () => {
  const cancel = (requestId: unknown) => ({
    jsonrpc: '2.0' as const,
    method: 'notifications/cancelled',
    params: { requestId },
  });

  it('cancels the call the agent names, in its session only, and tells every way of waiting', () => {
    const calls = new AgentCalls();
    const mine = calls.start('s1', 7);
    const other = calls.start('s2', 7);
    const early = mine.signal;
    const heard: string[] = [];
    mine.onCancel(() => heard.push('kept'));
    const stop = mine.onCancel(() => heard.push('stopped'));
    stop();
    expect(calls.take('s1', [cancel(7)])).toHaveLength(1);
    expect(mine.cancelled).toBe(true);
    expect(early.aborted).toBe(true);
    // A signal first asked for after the cancellation is aborted already.
    expect(mine.signal.aborted).toBe(true);
    expect(heard).toEqual(['kept']);
    expect(other.cancelled).toBe(false);
    expect(other.signal.aborted).toBe(false);
  });

  it('forgets a call once done: a late cancellation touches nothing', () => {
    const calls = new AgentCalls();
    const running = calls.start('s1', 'a');
    running.done();
    calls.take('s1', [cancel('a')]);
    expect(running.cancelled).toBe(false);
    const again = calls.start('s1', 'a');
    calls.take('s1', [cancel('a')]);
    expect(again.cancelled).toBe(true);
  });
});

describe('isJson and isEventStream', () => {
  it.each([
    ['application/json', true, false],
    ['application/json; charset=utf-8', true, false],
    [' Application/JSON ;charset=UTF-8', true, false],
    ['text/event-stream', false, true],
    ['TEXT/Event-Stream; charset=utf-8', false, true],
    ['application/jsonx', false, false],
    ['application/json-seq', false, false],
    ['text/event-streams', false, false],
    ['text/plain', false, false],
    ['', false, false],
  ])('%j: JSON %s, event stream %s', (type, json, events) => {
    expect(isJson(type)).toBe(json);
    expect(isEventStream(type)).toBe(events);
  });

  it('takes no type as neither', () => {
    expect(isJson(undefined)).toBe(false);
    expect(isEventStream(undefined)).toBe(false);
  });
});

describe('relayStream (a routed call answered with an event stream)', () => {
  /** A routed call and the deps relayStream needs, with every message sent upstream kept. */
  const routed = () => {
    const sent: Array<{ method?: string; params?: { requestId?: unknown } }> = [];
    const logged: string[] = [];
    const log = (_: unknown, message: string) => logged.push(message);
    const deps = {
      request: async (_target: unknown, options: { body?: unknown }) => {
        sent.push(JSON.parse(String(options.body)));
        return { statusCode: 202, headers: {}, body: Readable.from([]) };
      },
      tokens: { tokenFor: async () => ({ value: 't', authorization: 'Bearer t' }) },
      logger: { info: log, warn: log },
    } as unknown as RoutedCallsDeps;
    const running = new AgentCalls().start('s1', 5);
    const call: Call = {
      session: { id: 's1', hello: { capabilities: {} } } as unknown as GatewaySession,
      request: { jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'echo' } },
      integration: { id: 'tracker', name: 'Issue tracker' } as IntegrationRecord,
      prefix: 'tracker__',
      row: {} as ConnectionRow,
      target: upstreamTarget('http://127.0.0.1:9/mcp'),
      sessionHeaders: {},
      upstreamId: 'up-1',
      running,
      get signal() {
        return running.signal;
      },
    };
    return { deps, call, running, sent, logged };
  };
  const bodyOf = (answer: GatewayAnswer) => read(answer.body as PassThrough);
  const cancellations = (sent: Array<{ method?: string }>) =>
    sent.filter((m) => m.method === 'notifications/cancelled');

  it('answers with the agent id, ends, and forgets the call: a later cancellation sends nothing', async () => {
    const { deps, call, running, sent } = routed();
    const upstream = new PassThrough();
    const answer = relayStream(deps, call, upstream);
    upstream.write('data: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}}\n\n');
    upstream.write('data: {"jsonrpc":"2.0","id":"up-1","result":{"content":[]}}\n\n');
    const text = await bodyOf(answer);
    expect(text).toBe(
      'event: message\ndata: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}}\n\n' +
        'event: message\ndata: {"jsonrpc":"2.0","id":5,"result":{"content":[]}}\n\n',
    );
    running.cancel();
    await new Promise((resolve) => setImmediate(resolve));
    expect(cancellations(sent)).toEqual([]);
  });

  it('a call cancelled mid-stream: the agent gets the cancellation, the server is told, its stream cut', async () => {
    const { deps, call, running, sent } = routed();
    const upstream = new PassThrough();
    const answer = relayStream(deps, call, upstream);
    upstream.write('data: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}}\n\n');
    setImmediate(() => running.cancel());
    const text = await bodyOf(answer);
    expect(text).toContain('"id":5,"error":{"code":-32603,"message":"The request was cancelled."}');
    expect(upstream.destroyed).toBe(true);
    await new Promise((resolve) => setImmediate(resolve));
    expect(cancellations(sent)).toEqual([
      expect.objectContaining({ params: expect.objectContaining({ requestId: 'up-1' }) }),
    ]);
  });

  it('an agent that goes away before the answer: the server is told, its stream cut', async () => {
    const { deps, call, sent } = routed();
    const upstream = new PassThrough();
    const answer = relayStream(deps, call, upstream);
    upstream.write('data: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}}\n\n');
    (answer.body as PassThrough).destroy();
    await new Promise((resolve) => setImmediate(resolve));
    expect(upstream.destroyed).toBe(true);
    expect(cancellations(sent)).toEqual([
      expect.objectContaining({ params: expect.objectContaining({ requestId: 'up-1' }) }),
    ]);
  });

  it('a call cancelled while its stream head was read is cancelled, not left to run', async () => {
    const { deps, call, running, sent } = routed();
    running.cancel();
    const upstream = new PassThrough();
    const text = await bodyOf(relayStream(deps, call, upstream));
    expect(text).toBe(
      'event: message\ndata: {"jsonrpc":"2.0","id":5,"error":{"code":-32603,"message":"The request was cancelled."}}\n\n',
    );
    expect(upstream.destroyed).toBe(true);
    await new Promise((resolve) => setImmediate(resolve));
    expect(cancellations(sent)).toHaveLength(1);
  }, 5_000);
});
