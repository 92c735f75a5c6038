/**
 * The OpenAPI document as the route tests read it: fetch it, find the operation a request went
 * to, and validate a real answer against the operation's response schema with Ajv (2020-12).
 */

import { Ajv2020 } from 'ajv/dist/2020.js';
import formatsModule from 'ajv-formats';
import type { FastifyInstance } from 'fastify';
import type { RouteRegistrar } from '../../src/http/app.js';
import type { OpenApiDocument, OpenApiOperation } from '../../src/http/openapi/document.js';
import { openApiPath } from '../../src/http/openapi/document.js';

/** One answer the service sent, with the route (Fastify's pattern) it came from. */
export interface RoutedAnswer {
  method: string;
  route: string;
  path: string;
  status: number;
  contentType: string;
  body: string;
}

/** A route registrar that records every answer with its route pattern (changes nothing). */
export function tapRoutedAnswers(sink: RoutedAnswer[]): RouteRegistrar {
  return (app: FastifyInstance) => {
    app.addHook('onSend', async (request, reply, payload) => {
      sink.push({
        method: request.method,
        route: request.routeOptions.url ?? '',
        path: request.url.split('?')[0] ?? '',
        status: reply.statusCode,
        contentType: String(reply.getHeader('content-type') ?? ''),
        body:
          typeof payload === 'string' ? payload : Buffer.isBuffer(payload) ? payload.toString('utf8') : '',
      });
      return payload;
    });
  };
}

export async function fetchDocument(serviceUrl: string): Promise<OpenApiDocument> {
  const response = await fetch(`${serviceUrl}/api/v1/openapi.json`);
  if (response.status !== 200) throw new Error(`openapi.json: HTTP ${response.status}`);
  return (await response.json()) as OpenApiDocument;
}

export function operationFor(
  doc: OpenApiDocument,
  method: string,
  route: string,
): OpenApiOperation | undefined {
  return doc.paths[openApiPath(route)]?.[method.toLowerCase()];
}

/** Validates answers against the document; each problem is a line naming route, status and error. */
export class ResponseValidator {
  readonly #ajv: Ajv2020;
  readonly #doc: OpenApiDocument;

  constructor(doc: OpenApiDocument) {
    this.#doc = doc;
    this.#ajv = new Ajv2020({ strict: false, allErrors: true });
    // CommonJS under ESM: the plugin is the module's default export's default.
    const addFormats = (formatsModule as unknown as { default: (ajv: Ajv2020) => void }).default;
    addFormats(this.#ajv);
  }

  /** Compiles a schema of the document (with its components, so `$ref`s resolve). */
  compile(schema: unknown) {
    return this.#ajv.compile({ ...(schema as object), components: this.#doc.components });
  }

  /** What is wrong with this answer by the document, or undefined when it agrees. */
  check(answer: RoutedAnswer): string | undefined {
    const where = `${answer.method} ${answer.route} → ${answer.status}`;
    const op = operationFor(this.#doc, answer.method, answer.route);
    if (op === undefined) return `${where}: not in the document`;
    const response = op.responses[String(answer.status)] ?? op.responses.default;
    if (response === undefined) return `${where}: status not documented`;
    const media = answer.contentType.split(';')[0]?.trim() ?? '';
    if (answer.body === '' && media === '') return undefined;
    const content = response.content?.[media];
    if (content === undefined) {
      return `${where}: media type ${media} not documented (documented: ${Object.keys(response.content ?? {}).join(', ') || 'none'})`;
    }
    if (media !== 'application/json' && media !== 'application/problem+json') return undefined;
    const validate = this.compile(content.schema);
    if (validate(JSON.parse(answer.body))) return undefined;
    return `${where}: ${this.#ajv.errorsText(validate.errors)} in ${answer.body.slice(0, 300)}`;
  }
}
