import type { FastifyRequest, HTTPMethods, RouteHandlerMethod, RouteOptions } from 'fastify';
import type { z } from 'zod';
import { parseInput } from '../validate.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route's spec, where the route table finds it (see `documented`). */
    openapi?: RouteSpec;
  }
}

/**
 * Who may call a route, as the document's `security` says it:
 * `user` (bearer JWT or session cookie), `admin` (the same, with the admin role; others 404),
 * `bearer` (bearer JWT only: proxy, MCP gateway), `session` (a browser's cookie: pages, form posts),
 * `operator` (the metrics scrape token or an admin), `none` (anyone).
 */
export type RouteAuth = 'none' | 'user' | 'admin' | 'bearer' | 'session' | 'operator';

/**
 * One documented answer: a JSON body described by a zod schema, a problem+json error, another
 * media type, or no body. `headers` names response headers worth knowing, with their meaning.
 */
export type ResponseSpec = { description: string; headers?: Record<string, string> } & (
  | { json: z.ZodType }
  | { problem: true }
  | { contentType: string }
  | { json?: never; problem?: never; contentType?: never }
);

/** A problem+json answer (RFC 9457), e.g. `404: problem('No such connection, or not yours.')`. */
export const problem = (description: string): ResponseSpec => ({ description, problem: true });

/**
 * A route's one declaration: its input schemas (which `parseRequest` validates with) and its
 * answers (which the OpenAPI document describes). Registered with `documented`, so every route
 * the document names is a route that exists, and the route test finds any that is not named.
 */
export interface RouteSpec<
  P extends z.ZodType | undefined = z.ZodType | undefined,
  Q extends z.ZodType | undefined = z.ZodType | undefined,
  B extends z.ZodType | undefined = z.ZodType | undefined,
> {
  method: HTTPMethods | HTTPMethods[];
  /** Fastify's path (`/api/v1/connections/:id`); the document writes `{id}`. */
  url: string;
  /** Stable name of the operation (the client's method name where there is one). */
  operationId: string;
  summary: string;
  description?: string;
  tags: string[];
  auth: RouteAuth;
  params?: P;
  query?: Q;
  /** A JSON body (the API); `form` says it is `application/x-www-form-urlencoded` instead. */
  body?: B;
  bodyType?: 'json' | 'form';
  /** Success answers and the errors worth naming; every operation also gets a problem+json `default`. */
  responses: Record<number, ResponseSpec>;
}

/** Declares a route spec, keeping the zod schema types for `parseRequest` and the client. */
export function defineRoute<
  P extends z.ZodType | undefined = undefined,
  Q extends z.ZodType | undefined = undefined,
  B extends z.ZodType | undefined = undefined,
>(spec: RouteSpec<P, Q, B>): RouteSpec<P, Q, B> {
  return spec;
}

type Parsed<S> = S extends z.ZodType ? z.output<S> : undefined;

/**
 * Validates a request's path, query and body with the spec's schemas (400 naming each field, as
 * `parseInput` does). A part the spec does not declare comes back undefined.
 */
export function parseRequest<
  P extends z.ZodType | undefined,
  Q extends z.ZodType | undefined,
  B extends z.ZodType | undefined,
>(
  spec: RouteSpec<P, Q, B>,
  request: FastifyRequest,
): { params: Parsed<P>; query: Parsed<Q>; body: Parsed<B> } {
  const part = (schema: z.ZodType | undefined, input: unknown, where: string) =>
    schema === undefined ? undefined : parseInput(schema, input, where);
  return {
    params: part(spec.params, request.params, 'path') as Parsed<P>,
    query: part(spec.query, request.query, 'query') as Parsed<Q>,
    body: part(
      spec.body,
      bodyInput(spec.body, request.body),
      spec.bodyType === 'form' ? 'form' : 'body',
    ) as Parsed<B>,
  };
}

/** A missing body is `{}` (so each required field is named), unless the schema takes none. */
function bodyInput(schema: z.ZodType | undefined, body: unknown): unknown {
  if (body !== undefined && body !== null) return body;
  return schema?.safeParse(undefined).success ? undefined : {};
}

/**
 * The Fastify route options for a documented route: its method and path come from the spec, and
 * the spec rides along in `config.openapi`, where the route table finds it.
 */
export function documented(
  spec: RouteSpec,
  handler: RouteHandlerMethod,
  options: Omit<RouteOptions, 'method' | 'url' | 'handler'> = {},
): RouteOptions {
  return {
    ...options,
    method: spec.method,
    url: spec.url,
    config: { ...(options.config ?? {}), openapi: spec },
    handler,
  };
}

/**
 * Route options carrying a spec, for `app.get(spec.url, withSpec(spec), handler)`: the route
 * table checks at registration that the method and path are the spec's.
 */
export function withSpec(
  spec: RouteSpec,
  options: { config?: Record<string, unknown> } = {},
): { config: Record<string, unknown> } {
  return { ...options, config: { ...(options.config ?? {}), openapi: spec } };
}

/** The spec a route was registered with, if any (see `documented`). */
export function specOf(route: { config?: unknown }): RouteSpec | undefined {
  const config = route.config as { openapi?: RouteSpec } | undefined;
  return config?.openapi;
}
