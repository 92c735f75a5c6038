import type { FastifyRequest, RouteOptions } from 'fastify';
import { Problem } from './problem.js';

/** The proxy passes any body through untouched; every other API route reads JSON. */
const passThrough = /\/proxy(?:\/\*)?$/;

/** Whether a route reads JSON bodies only: the API, except the proxy. */
export function readsJsonOnly(url: string): boolean {
  return url.startsWith('/api/') && !passThrough.test(url);
}

/**
 * Refuses, with 415, a body the route does not read: the JSON API takes `application/json` only
 * (a form post or plain text there is a mistake or a cross-site trick). @see RFC 9110 §15.5.16
 */
export function refuseNonJsonBody(request: FastifyRequest): void {
  const length = request.headers['content-length'];
  const hasBody =
    request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
  if (!hasBody) return;
  const type = (request.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/json') {
    throw new Problem(415, 'unsupported_media_type', 'Unsupported Media Type', 'Send application/json.');
  }
}

/** Adds the 415 check to a JSON API route as it is declared (the proxy's hot path stays untouched). */
export function guardJsonBody(route: RouteOptions): void {
  if (!readsJsonOnly(route.url)) return;
  const hook = async (request: FastifyRequest) => refuseNonJsonBody(request);
  const existing = route.preParsing;
  route.preParsing =
    existing === undefined ? [hook] : [...(Array.isArray(existing) ? existing : [existing]), hook];
}
