import { maxHeaderSize, type ServerResponse, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyBaseLogger } from 'fastify';
import { Problem } from './problem.js';
import { securityHeaders } from './security-headers.js';

/** The limits a client error message may name. */
export interface RequestLimits {
  headersTimeoutMs: number;
  requestTimeoutMs: number;
}

/**
 * Answers what Node's HTTP parser refuses before any route runs (headers too large, malformed
 * requests, a bad Content-Length, an unknown method, a request not received in time) with a
 * complete problem+json response, then closes the connection. Nothing of the request is logged
 * but the error code: the raw bytes may hold a credential. @see RFC 9110 §15.5, RFC 6585 §5
 */
export function createClientErrorHandler(logger: FastifyBaseLogger, limits: RequestLimits) {
  return (error: NodeJS.ErrnoException, socket: Duplex): void => {
    if (error.code === 'ECONNRESET' || socket.destroyed) return;
    const problem = problemForClientError(error.code, limits);
    logger.info({ code: error.code, status: problem.status }, 'client error');
    if (socket.writable && !answered(socket)) socket.write(rawProblemResponse(problem));
    socket.destroy();
  };
}

/**
 * Whether the request on this socket already has a response, under way or finished early while
 * its body still arrives (Node then discards the rest of the body: the request is `_dumped`).
 * A second response on the connection would be read as the answer to a request never sent.
 */
function answered(socket: Duplex): boolean {
  const s = socket as {
    _httpMessage?: { headersSent?: boolean } | null;
    parser?: { incoming?: { _dumped?: boolean } | null } | null;
  };
  return s._httpMessage?.headersSent === true || s.parser?.incoming?._dumped === true;
}

/** The problem for a parser or timeout error code from Node's HTTP server. */
export function problemForClientError(code: string | undefined, limits: RequestLimits): Problem {
  switch (code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new Problem(
        408,
        'request_timeout',
        'Request Timeout',
        `The request was not received in time: headers within ${seconds(limits.headersTimeoutMs)}, the whole request within ${seconds(limits.requestTimeoutMs)}.`,
      );
    case 'HPE_HEADER_OVERFLOW':
      return new Problem(
        431,
        'header_fields_too_large',
        'Request Header Fields Too Large',
        `The request headers are larger than the limit of ${maxHeaderSize} bytes.`,
      );
    case 'HPE_INVALID_METHOD':
      return new Problem(501, 'not_implemented', 'Not Implemented', 'The request method is not supported.');
    case 'HPE_INVALID_CONTENT_LENGTH':
    case 'HPE_UNEXPECTED_CONTENT_LENGTH':
      return new Problem(400, 'bad_request', 'Bad Request', 'The Content-Length header is not valid.');
    case 'HPE_INVALID_TRANSFER_ENCODING':
    case 'HPE_INVALID_CHUNK_SIZE':
      return new Problem(400, 'bad_request', 'Bad Request', 'The chunked request body is not valid.');
    case 'HPE_INVALID_HEADER_TOKEN':
    case 'HPE_UNEXPECTED_SPACE':
    case 'HPE_LF_EXPECTED':
    case 'HPE_CR_EXPECTED':
      return new Problem(400, 'bad_request', 'Bad Request', 'A request header is not valid.');
    default:
      return new Problem(400, 'bad_request', 'Bad Request', 'The request is not valid HTTP/1.1.');
  }
}

/**
 * `CONNECT` never reaches a route (Node hands the socket over for a tunnel): answer 405 with the
 * methods the target allows (none for an authority-form target) and close. We are no proxy.
 */
export function createConnectHandler(logger: FastifyBaseLogger, allowedFor: (path: string) => string[]) {
  return (request: { url?: string | undefined }, socket: Duplex): void => {
    const target = request.url ?? '';
    const allow = target.startsWith('/') ? allowedFor(target.split('?')[0] ?? '') : [];
    logger.info({ method: 'CONNECT', status: 405 }, 'request refused');
    const problem = new Problem(
      405,
      'method_not_allowed',
      'Method Not Allowed',
      'CONNECT is not supported: this is no proxy.',
    );
    if (socket.writable) socket.write(rawProblemResponse(problem, { allow: allow.join(', ') }));
    socket.destroy();
  };
}

/**
 * An `Expect` other than `100-continue` is answered by Node before any route: 417 problem+json
 * instead of its bare status line. @see RFC 9110 §10.1.1
 */
export function createExpectationHandler(logger: FastifyBaseLogger) {
  return (_request: unknown, response: ServerResponse): void => {
    logger.info({ status: 417 }, 'request refused');
    const problem = new Problem(
      417,
      'expectation_failed',
      'Expectation Failed',
      'Only "Expect: 100-continue" is supported.',
    );
    const body = JSON.stringify(problem.toBody());
    response.writeHead(417, {
      ...securityHeaders,
      'content-type': 'application/problem+json; charset=utf-8',
      'content-length': String(Buffer.byteLength(body)),
    });
    response.end(body);
  };
}

/** A complete HTTP/1.1 problem+json response that closes the connection, for answers outside Fastify. */
export function rawProblemResponse(problem: Problem, extraHeaders: Record<string, string> = {}): string {
  const body = JSON.stringify(problem.toBody());
  const headers: Record<string, string> = {
    ...securityHeaders,
    ...extraHeaders,
    'content-type': 'application/problem+json; charset=utf-8',
    'content-length': String(Buffer.byteLength(body)),
    connection: 'close',
  };
  const lines = Object.entries(headers).map(([name, value]) => `${name}: ${value}`);
  return `HTTP/1.1 ${problem.status} ${STATUS_CODES[problem.status] ?? problem.title}\r\n${lines.join('\r\n')}\r\n\r\n${body}`;
}

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}
