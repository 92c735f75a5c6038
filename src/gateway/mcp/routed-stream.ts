/**
 * A routed call's answer when the server answers with an event stream: relayed to the agent
 * message by message (its answer under the agent's id, notifications as they are), the server's
 * requests during the call (elicitation, sampling, roots) relayed to the agent when it declared
 * the capability and refused otherwise, and a stream that breaks off before answering ended with
 * an error naming the server. @see MCP 2025-11-25, Basic / Transports §Sending Messages to the Server
 */
import { PassThrough, type Readable } from 'node:stream';
import {
  CreateMessageResultSchema,
  ElicitResultSchema,
  ErrorCode,
  ListRootsResultSchema,
  McpError,
} from '@modelcontextprotocol/sdk/types.js';
import type { ToAgent } from './agent-calls.js';
import { dropped, type GatewayAnswer, reasonOf } from './answers.js';
import { errorResponse, type JSONRPCRequest } from './jsonrpc.js';
import { cancelled, drain, isAnswerTo, isServerRequest, messagesIn, streamAnswer } from './routed-answers.js';
import {
  answerForAgent,
  type Call,
  cancelUpstream,
  type RoutedCallsDeps,
  sendOnCall,
} from './routed-call.js';
import { SseParser, sseMessage } from './sse.js';

/** A server's requests relayed to the agent: the capability it must have declared, and the answer's schema. */
const relayable = {
  'elicitation/create': { capability: 'elicitation', schema: ElicitResultSchema },
  'sampling/createMessage': { capability: 'sampling', schema: CreateMessageResultSchema },
  'roots/list': { capability: 'roots', schema: ListRootsResultSchema },
} as const;

/**
 * Relays the server's event stream to the agent, message by message: its answer with the
 * agent's id (then the stream ends), notifications as they are, its requests to the agent.
 */
export function relayStream(deps: RoutedCallsDeps, call: Call, upstream: Readable): GatewayAnswer {
  const out = new PassThrough();
  let answered = false;
  let finished = false;
  /**
   * Stops what the server's requests wait for once the stream is finished. Made only when the
   * server sends one: an `AbortController` (and the `DOMException` its abort makes) on every
   * call showed in the aggregate's profile.
   */
  let relays: AbortController | undefined;
  const relaySignal = () => {
    if (relays === undefined) {
      relays = new AbortController();
      if (finished) relays.abort();
    }
    return AbortSignal.any([call.signal, relays.signal]);
  };
  const write = (message: unknown) => {
    if (out.writableEnded || out.destroyed) return;
    if (!out.write(sseMessage(message)) && !upstream.isPaused()) {
      // A slow agent slows the server down instead of filling our memory.
      upstream.pause();
      out.once('drain', () => upstream.resume());
    }
  };
  /** Ends the agent's stream; the rest of the server's is read and dropped, or cut off when unanswered. */
  const finish = (cut = false) => {
    if (finished) return;
    finished = true;
    stopWaitingForCancel();
    relays?.abort();
    if (!out.writableEnded) out.end();
    if (!cut) {
      upstream.removeListener('data', feed);
      upstream.resume();
    } else upstream.destroy();
  };
  const toAgent: ToAgent = async (message) => write(message);
  const parser = new SseParser((event) => {
    for (const message of messagesIn(event.data)) {
      if (answered) return;
      if (isAnswerTo(message, call.upstreamId)) {
        answered = true;
        write(answerForAgent(call, message));
        finish();
      } else if (isServerRequest(message)) {
        void serverRequest(deps, call, message, toAgent, relaySignal());
      } else write(message);
    }
  });
  const feed = (chunk: Buffer) => parser.feed(chunk);
  upstream.on('data', feed);
  const ended = () => {
    if (!answered && !call.running.cancelled) {
      answered = true;
      deps.logger.warn(
        { integration: call.integration.id, unanswered: 1 },
        'mcp gateway: upstream stream ended before answering',
      );
      write(errorResponse(call.request.id, dropped(call.integration)));
    }
    finish();
  };
  upstream.once('end', ended);
  upstream.once('error', ended);
  upstream.once('close', ended);
  const onCancel = () => {
    if (!answered) {
      answered = true;
      cancelUpstream(deps, call);
      write(errorResponse(call.request.id, cancelled));
    }
    finish(true);
  };
  // A call cancelled while its answer's head was read: `onCancel` would never run for it.
  const stopWaitingForCancel = call.running.cancelled ? () => {} : call.running.onCancel(onCancel);
  if (call.running.cancelled) onCancel();
  out.once('close', () => {
    // The agent went away before the answer: the server need not go on.
    if (!answered) {
      answered = true;
      cancelUpstream(deps, call);
    }
    finish(true);
  });
  return streamAnswer(call.session, out);
}

/** A server's request during the call: relayed to the agent when it can answer, else refused; the reply goes upstream. */
async function serverRequest(
  deps: RoutedCallsDeps,
  call: Call,
  message: JSONRPCRequest,
  toAgent: ToAgent,
  signal: AbortSignal,
): Promise<void> {
  let reply: object;
  try {
    reply = {
      jsonrpc: '2.0',
      id: message.id,
      result: await askAgent(deps, call, message, toAgent, signal),
    };
  } catch (error) {
    const mcp = error instanceof McpError;
    reply = {
      jsonrpc: '2.0',
      id: message.id,
      error: {
        code: mcp ? error.code : ErrorCode.InternalError,
        message: mcp ? error.message.replace(`MCP error ${error.code}: `, '') : 'The agent did not answer.',
        ...(mcp && error.data !== undefined ? { data: error.data } : {}),
      },
    };
  }
  try {
    drain(await sendOnCall(deps, call, Buffer.from(JSON.stringify(reply))));
  } catch (error) {
    deps.logger.info(
      { integration: call.integration.id, reason: reasonOf(error) },
      "mcp gateway: a server's request was not answered",
    );
  }
}

async function askAgent(
  deps: RoutedCallsDeps,
  call: Call,
  message: JSONRPCRequest,
  toAgent: ToAgent,
  signal: AbortSignal,
) {
  if (message.method === 'ping') return {};
  const relay = relayable[message.method as keyof typeof relayable];
  if (relay === undefined) {
    throw new McpError(ErrorCode.MethodNotFound, `${message.method} cannot be relayed to the agent`);
  }
  const declared = call.session.hello.capabilities[relay.capability] as Record<string, unknown> | undefined;
  const mode =
    message.method === 'elicitation/create'
      ? ((message.params?.mode as string | undefined) ?? 'form')
      : undefined;
  if (declared === undefined || (mode !== undefined && mode !== 'form' && declared[mode] === undefined)) {
    throw new McpError(ErrorCode.InvalidRequest, `the agent does not support ${message.method}`);
  }
  return deps.calls.ask(
    toAgent,
    call.request.id,
    { method: message.method, ...(message.params === undefined ? {} : { params: message.params }) },
    relay.schema,
    signal,
  );
}
