import { type FastifyReply, type FastifyRequest, LogController } from 'fastify';
import type { Logger } from '../observability/logger.js';

/**
 * One access-log line per request ("request completed", with method, redacted URL, status and
 * time) instead of Fastify's two: the incoming line goes to debug. The completed line is written
 * by a logger without pino's wildcard redaction: its fields are fixed and already safe (the
 * request serializer drops query values), and walking ~80 redaction paths on every proxied
 * request cost more than the rest of the line. Errors still go through the redacting logger.
 */
export class AccessLogController extends LogController {
  readonly #access: Logger;

  constructor(logger: Logger) {
    super();
    this.#access = logger.child({}, { redact: [] });
  }

  /** The access logger itself, for the routes answered outside Fastify (`fast-routes.ts`). */
  get logger(): Logger {
    return this.#access;
  }

  override incomingRequest(request: FastifyRequest): void {
    request.log.debug({ req: request }, 'incoming request');
  }

  override requestCompleted(
    error: Error | null | undefined,
    request: FastifyRequest,
    reply: FastifyReply,
  ): void {
    if (error) {
      reply.log.error(
        { req: request, res: reply, err: error, responseTime: reply.elapsedTime },
        'request errored',
      );
    } else if (this.#access.isLevelEnabled('info')) {
      this.#access.info(
        { reqId: request.id, req: request, res: reply, responseTime: reply.elapsedTime },
        'request completed',
      );
    }
  }
}
