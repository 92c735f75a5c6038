/**
 * The small parts of routed-calls.ts: the answers it gives, and how it reads what a server and
 * an agent send (bounded JSON, event data, the headers that decide whether a call is routed).
 */
import type { PassThrough, Readable } from 'node:stream';
import { ErrorCode, SUPPORTED_PROTOCOL_VERSIONS } from '@modelcontextprotocol/sdk/types.js';
import type { ForwardedResponse } from '../forwarder.js';
import { type GatewayAnswer, json, sessionHeader } from './answers.js';
import type { JSONRPCRequest, RequestId, RpcError } from './jsonrpc.js';
import type { GatewaySession } from './sessions.js';
import { isAnswer } from './sse.js';

/** A JSON answer is read whole (to give it the agent's id back) up to this size. */
const maxJsonAnswerBytes = 32 * 1024 * 1024;

/** An answer that is neither a JSON-RPC answer to our request nor a refusal we understand. */
export class UnexpectedAnswer extends Error {
  readonly code = 'upstream_unexpected_answer';
  constructor(status: number) {
    super(`the server answered HTTP ${status} without an answer to the request`);
  }
}

export const cancelled: RpcError = { code: ErrorCode.InternalError, message: 'The request was cancelled.' };

export function streamAnswer(session: GatewaySession, body: PassThrough): GatewayAnswer {
  return {
    status: 200,
    headers: {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache, no-transform',
      [sessionHeader]: session.id,
    },
    body,
  };
}

export function jsonAnswer(session: GatewaySession, message: unknown): GatewayAnswer {
  return { status: 200, headers: { ...json, [sessionHeader]: session.id }, body: JSON.stringify(message) };
}

export function isAnswerTo(
  message: unknown,
  id: string,
): message is { jsonrpc: '2.0'; id: RequestId; result?: unknown; error?: unknown } {
  return isAnswer(message) && message.id === id;
}

/** Streamable HTTP: a POST's Accept lists both answer types. */
export function acceptsBoth(accept: string | string[] | undefined): boolean {
  const value = String(accept ?? '');
  return value.includes('application/json') && value.includes('text/event-stream');
}

export function knownVersion(version: string | string[] | undefined): boolean {
  return (
    version === undefined || (typeof version === 'string' && SUPPORTED_PROTOCOL_VERSIONS.includes(version))
  );
}

export function drain(answer: ForwardedResponse): void {
  answer.body?.resume();
}

/** A JSON body, read whole (bounded); undefined when it is not JSON or too large. */
export async function readJson(body: Readable, contentLength: string | undefined): Promise<unknown> {
  const length = contentLength === undefined ? Number.NaN : Number(contentLength);
  let text: string;
  if (length <= maxJsonAnswerBytes && typeof (body as Partial<BodyText>).text === 'function') {
    // undici's body reads itself whole in one go, cheaper than iterating it.
    text = await (body as unknown as BodyText).text();
  } else {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of body) {
      size += (chunk as Buffer).length;
      if (size > maxJsonAnswerBytes) {
        body.destroy();
        return undefined;
      }
      chunks.push(chunk as Buffer);
    }
    text = Buffer.concat(chunks).toString('utf8');
  }
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

interface BodyText {
  text(): Promise<string>;
}

export function messagesIn(data: string): unknown[] {
  try {
    const parsed: unknown = JSON.parse(data);
    return Array.isArray(parsed) ? parsed : [parsed];
  } catch {
    return [];
  }
}

/** A request a server sends: a method and an id. */
export function isServerRequest(message: unknown): message is JSONRPCRequest {
  if (typeof message !== 'object' || message === null) return false;
  const m = message as { method?: unknown; id?: unknown };
  return typeof m.method === 'string' && (typeof m.id === 'string' || typeof m.id === 'number');
}
