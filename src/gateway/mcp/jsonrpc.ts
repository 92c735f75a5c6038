/**
 * JSON-RPC 2.0 as the MCP gateway reads it: a POST body parsed and checked against the MCP
 * SDK's message schema, and the error answers the Streamable HTTP transport gives for bodies
 * that are not JSON-RPC. @see MCP 2025-11-25, Basic / Transports §Streamable HTTP
 */
import {
  ErrorCode,
  type InitializeRequest,
  isInitializeRequest,
  type JSONRPCMessage,
  JSONRPCMessageSchema,
  type JSONRPCRequest,
  type JSONRPCResponse,
} from '@modelcontextprotocol/sdk/types.js';

export type { JSONRPCMessage, JSONRPCRequest };
export type RequestId = JSONRPCRequest['id'];

/** A JSON-RPC error object (the `error` member of an error response). */
export interface RpcError {
  code: number;
  message: string;
  data?: unknown;
}

/** What a POST body held: one message or a batch (older protocol revisions allow batches). */
export interface PostedMessages {
  messages: JSONRPCMessage[];
  batch: boolean;
}

/** Why a POST body is refused before anything is forwarded: HTTP 400 with a JSON-RPC error. */
export class BodyRefusal extends Error {
  constructor(readonly rpc: RpcError) {
    super(rpc.message);
  }
}

/** Largest batch accepted (the MCP SDK's transport refuses larger ones too). */
const maxBatch = 100;

/** Parses a POST body into JSON-RPC messages, or throws a `BodyRefusal` naming what is wrong. */
export function parseMessages(body: Buffer | string): PostedMessages {
  let raw: unknown;
  try {
    raw = JSON.parse(typeof body === 'string' ? body : body.toString('utf8'));
  } catch {
    throw new BodyRefusal({ code: ErrorCode.ParseError, message: 'Parse error: the body is not valid JSON' });
  }
  const batch = Array.isArray(raw);
  const items: unknown[] = batch ? (raw as unknown[]) : [raw];
  if (items.length === 0) {
    throw new BodyRefusal({ code: ErrorCode.InvalidRequest, message: 'Invalid Request: the batch is empty' });
  }
  if (items.length > maxBatch) {
    throw new BodyRefusal({
      code: ErrorCode.InvalidRequest,
      message: `Invalid Request: a batch may hold at most ${maxBatch} messages`,
    });
  }
  const messages: JSONRPCMessage[] = [];
  for (const [i, item] of items.entries()) {
    if (plainlyValid(item)) {
      messages.push(item as JSONRPCMessage);
      continue;
    }
    const parsed = JSONRPCMessageSchema.safeParse(item);
    if (!parsed.success) {
      throw new BodyRefusal({
        code: ErrorCode.InvalidRequest,
        message: `Invalid Request: ${batch ? `message ${i} is` : 'the body is'} not a JSON-RPC 2.0 request, notification or response`,
      });
    }
    messages.push(parsed.data);
  }
  if (messages.some((m) => isInitialize(m) && !isInitializeRequest(m))) {
    throw new BodyRefusal({
      code: ErrorCode.InvalidParams,
      message: 'Invalid params: initialize needs protocolVersion, capabilities and clientInfo',
    });
  }
  const initializes = messages.filter(isInitialize).length;
  if (initializes > 0 && messages.length > 1) {
    throw new BodyRefusal({
      code: ErrorCode.InvalidRequest,
      message: 'Invalid Request: initialize must be sent alone',
    });
  }
  return { messages, batch };
}

/**
 * Whether `message`, one of `parseMessages`' messages, is an `initialize` request (checked whole
 * by `parseMessages`). Cheaper than the SDK's `isInitializeRequest`, which parses any message.
 */
export function isInitialize(message: JSONRPCMessage): message is JSONRPCRequest & InitializeRequest {
  return (message as { method?: unknown }).method === 'initialize' && 'id' in message;
}

/** Whether a message of `parseMessages` (already validated) is a request: it has a method and an id. */
export function isRequestMessage(message: JSONRPCMessage): message is JSONRPCRequest {
  return 'method' in message && 'id' in message;
}

/** Whether a message of `parseMessages` (already validated) is an answer: a result or an error. */
export function isAnswerMessage(message: JSONRPCMessage): message is JSONRPCResponse {
  return 'result' in message || 'error' in message;
}

/** The requests (messages with an id and a method) among `messages`. */
export function requestsIn(messages: readonly JSONRPCMessage[]): JSONRPCRequest[] {
  return messages.filter(isRequestMessage);
}

/**
 * Whether `item` is, beyond doubt, a message `JSONRPCMessageSchema` accepts unchanged: the
 * common shapes checked by hand (the schema's zod parse was 3–4 % of a gateway call). Anything
 * this does not recognise is left to the schema, which has the last word.
 */
export function plainlyValid(item: unknown): boolean {
  if (!isObject(item) || item.jsonrpc !== '2.0') return false;
  let keys = 1;
  const has = (key: string) => {
    if (!(key in item)) return false;
    keys++;
    return true;
  };
  const hasId = has('id');
  if (hasId && !isRequestId(item.id)) return false;
  if (has('method')) {
    if (typeof item.method !== 'string') return false;
    if (has('params') && !(isObject(item.params) && metaIsPlain(item.params._meta))) return false;
  } else if (hasId && has('result')) {
    if (!isObject(item.result) || !metaIsPlain(item.result._meta)) return false;
  } else if (has('error')) {
    const error = item.error;
    if (!isObject(error) || !Number.isSafeInteger(error.code) || typeof error.message !== 'string') {
      return false;
    }
    for (const key in error) if (key !== 'code' && key !== 'message' && key !== 'data') return false;
  } else return false;
  // Strict schemas: no member besides the ones checked.
  return Object.keys(item).length === keys;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isRequestId(value: unknown): boolean {
  return typeof value === 'string' || Number.isSafeInteger(value);
}

/** `_meta` absent, or holding at most a valid `progressToken` (other keys: the schema decides). */
function metaIsPlain(meta: unknown): boolean {
  if (meta === undefined) return true;
  if (!isObject(meta)) return false;
  for (const key in meta) if (key !== 'progressToken') return false;
  return meta.progressToken === undefined || isRequestId(meta.progressToken);
}

/** A JSON-RPC error response. */
export function errorResponse(id: RequestId | null, error: RpcError) {
  return { jsonrpc: '2.0' as const, id, error };
}

/** A JSON-RPC result response. */
export function resultResponse(id: RequestId, result: Record<string, unknown>) {
  return { jsonrpc: '2.0' as const, id, result };
}
