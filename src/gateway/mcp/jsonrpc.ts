/**
 * JSON-RPC 2.0 as the MCP gateway reads it: a POST body parsed and checked against the MCP
 * SDK's message schema, and the error answers the Streamable HTTP transport gives for bodies
 * that are not JSON-RPC. @see MCP 2025-11-25, Basic / Transports §Streamable HTTP
 */
import {
  ErrorCode,
  isInitializeRequest,
  isJSONRPCRequest,
  type JSONRPCMessage,
  JSONRPCMessageSchema,
  type JSONRPCRequest,
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
    const parsed = JSONRPCMessageSchema.safeParse(item);
    if (!parsed.success) {
      throw new BodyRefusal({
        code: ErrorCode.InvalidRequest,
        message: `Invalid Request: ${batch ? `message ${i} is` : 'the body is'} not a JSON-RPC 2.0 request, notification or response`,
      });
    }
    messages.push(parsed.data);
  }
  if (messages.some((m) => isJSONRPCRequest(m) && m.method === 'initialize' && !isInitializeRequest(m))) {
    throw new BodyRefusal({
      code: ErrorCode.InvalidParams,
      message: 'Invalid params: initialize needs protocolVersion, capabilities and clientInfo',
    });
  }
  const initializes = messages.filter(isInitializeRequest).length;
  if (initializes > 0 && messages.length > 1) {
    throw new BodyRefusal({
      code: ErrorCode.InvalidRequest,
      message: 'Invalid Request: initialize must be sent alone',
    });
  }
  return { messages, batch };
}

/** The requests (messages with an id and a method) among `messages`. */
export function requestsIn(messages: readonly JSONRPCMessage[]): JSONRPCRequest[] {
  return messages.filter(isJSONRPCRequest);
}

/** A JSON-RPC error response. */
export function errorResponse(id: RequestId | null, error: RpcError) {
  return { jsonrpc: '2.0' as const, id, error };
}

/** A JSON-RPC result response. */
export function resultResponse(id: RequestId, result: Record<string, unknown>) {
  return { jsonrpc: '2.0' as const, id, result };
}
