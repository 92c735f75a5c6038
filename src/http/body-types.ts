import type { FastifyRequest } from 'fastify';
import { Problem } from './problem.js';

/** The proxy passes any body through untouched; every other API route reads JSON. */
const passThrough = /\/proxy(?:\/\*)?$/;

/**
 * Refuses, with 415, a body the route does not read: the JSON API takes `application/json` only
 * (a form post or plain text there is a mistake or a cross-site trick). Pages take forms.
 * @see RFC 9110 §15.5.16
 */
export function checkBodyType(request: FastifyRequest): void {
  const route = request.routeOptions.url;
  if (route === undefined || !route.startsWith('/api/') || passThrough.test(route)) return;
  const length = request.headers['content-length'];
  const hasBody =
    request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
  if (!hasBody) return;
  const type = (request.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/json') {
    throw new Problem(415, 'unsupported_media_type', 'Unsupported Media Type', 'Send application/json.');
  }
}
