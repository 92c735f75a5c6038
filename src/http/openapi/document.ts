import { z } from 'zod';
import type { RouteAuth, RouteSpec } from './route-spec.js';
import { problemSchema } from './schemas.js';

/** A JSON Schema (2020-12) as the document carries it. */
export type JsonSchema = Record<string, unknown>;

export interface OpenApiOperation {
  operationId: string;
  summary: string;
  description?: string;
  tags: string[];
  security: Array<Record<string, string[]>>;
  parameters?: Array<{
    name: string;
    in: 'path' | 'query';
    required: boolean;
    description?: string;
    schema: JsonSchema;
  }>;
  requestBody?: { required: boolean; content: Record<string, { schema: JsonSchema }> };
  responses: Record<string, OpenApiResponse>;
}

export interface OpenApiResponse {
  description: string;
  headers?: Record<string, { description: string; schema: JsonSchema }>;
  content?: Record<string, { schema: JsonSchema }>;
}

export interface OpenApiDocument {
  openapi: '3.1.1';
  info: { title: string; version: string; description: string };
  servers: Array<{ url: string }>;
  tags: Array<{ name: string; description: string }>;
  paths: Record<string, Record<string, OpenApiOperation>>;
  components: {
    schemas: Record<string, JsonSchema>;
    securitySchemes: Record<string, Record<string, unknown>>;
  };
}

/** The operations OpenAPI 3.1 can name (QUERY has none before 3.2; see `openApiMethods`). */
const operationNames = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']);

/** The HTTP methods of a spec that OpenAPI 3.1 can describe, lower-cased. */
export function openApiMethods(spec: RouteSpec): string[] {
  const methods = Array.isArray(spec.method) ? spec.method : [spec.method];
  return methods.map((m) => m.toLowerCase()).filter((m) => operationNames.has(m));
}

/** Fastify's `/connections/:id/proxy/*` as OpenAPI writes it: `/connections/{id}/proxy/{path}`. */
export function openApiPath(url: string): string {
  return url
    .split('/')
    .map((segment) => {
      if (segment === '*') return '{path}';
      if (segment.startsWith(':')) return `{${segment.slice(1)}}`;
      return segment;
    })
    .join('/');
}

const problemRef = { $ref: '#/components/schemas/Problem' };

const securityFor: Record<RouteAuth, Array<Record<string, string[]>>> = {
  none: [],
  user: [{ bearerAuth: [] }, { sessionCookie: [] }],
  admin: [{ bearerAuth: [] }, { sessionCookie: [] }],
  bearer: [{ bearerAuth: [] }],
  session: [{ sessionCookie: [] }],
  operator: [{ metricsToken: [] }, { bearerAuth: [] }, { sessionCookie: [] }],
};

const tagDescriptions: Record<string, string> = {
  Integrations: 'What the signed-in user may connect, and its status.',
  Connections: 'A user’s connections: create (an authorization URL), read, reconnect, delete. Never a token.',
  Proxy: 'Calls to an integration’s API with the connection’s token, which the caller never sees.',
  'MCP gateway': 'MCP Streamable HTTP endpoints that speak to MCP servers with the user’s token.',
  Notifications: 'In-app notifications and the server-sent event stream.',
  Admin: 'Administrators only; any other signed-in user gets 404.',
  'Browser flow': 'Pages and form posts a person’s browser goes through (session cookie, CSRF token).',
  Session: 'Signing in: the platform’s JWT hand-off to a session cookie.',
  Operations: 'Health, metrics, and this document.',
};

/** Converts a zod schema to the 2020-12 JSON Schema the document carries (no `$schema` member). */
export function jsonSchemaOf(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  const { $schema: _, ...rest } = z.toJSONSchema(schema, {
    target: 'draft-2020-12',
    io,
    unrepresentable: 'any',
    reused: 'inline',
  }) as JsonSchema;
  return rest;
}

/** The parameters of one location (`path`, `query`) from an object schema's properties. */
function parametersOf(
  schema: z.ZodType | undefined,
  where: 'path' | 'query',
): NonNullable<OpenApiOperation['parameters']> {
  if (schema === undefined) return [];
  const json = jsonSchemaOf(schema, 'input');
  const properties = (json.properties ?? {}) as Record<string, JsonSchema>;
  const required = new Set((json.required ?? []) as string[]);
  return Object.entries(properties).map(([name, property]) => {
    const { description, ...rest } = property;
    return {
      name: name === '*' ? 'path' : name,
      in: where,
      required: where === 'path' || required.has(name),
      ...(typeof description === 'string' ? { description } : {}),
      schema: rest,
    };
  });
}

function operationOf(spec: RouteSpec, method: string, multiple: boolean): OpenApiOperation {
  const path = parametersOf(spec.params, 'path');
  // A path segment the spec's params schema does not describe is still a required string.
  for (const match of openApiPath(spec.url).matchAll(/\{([^}]+)\}/g)) {
    const name = match[1]!;
    if (!path.some((p) => p.name === name))
      path.push({ name, in: 'path', required: true, schema: { type: 'string' } });
  }
  const parameters = [...path, ...parametersOf(spec.query, 'query')];
  const responses: Record<string, OpenApiResponse> = {};
  for (const [status, r] of Object.entries(spec.responses)) {
    const response: OpenApiResponse = { description: r.description };
    if (r.headers !== undefined) {
      response.headers = Object.fromEntries(
        Object.entries(r.headers).map(([name, description]) => [
          name,
          { description, schema: { type: 'string' } },
        ]),
      );
    }
    if ('json' in r && r.json !== undefined) {
      response.content = { 'application/json': { schema: jsonSchemaOf(r.json, 'output') } };
    } else if ('problem' in r && r.problem === true) {
      response.content = { 'application/problem+json': { schema: problemRef } };
    } else if ('contentType' in r && r.contentType !== undefined) {
      response.content = { [r.contentType]: { schema: { type: 'string' } } };
    }
    responses[status] = response;
  }
  responses.default = {
    description: 'Any other error, as problem+json (RFC 9457)',
    content: { 'application/problem+json': { schema: problemRef } },
  };
  const bodyMedia = spec.bodyType === 'form' ? 'application/x-www-form-urlencoded' : 'application/json';
  return {
    operationId: multiple ? `${spec.operationId}_${method}` : spec.operationId,
    summary: spec.summary,
    ...(spec.description === undefined ? {} : { description: spec.description }),
    tags: spec.tags,
    security: securityFor[spec.auth],
    ...(parameters.length === 0 ? {} : { parameters }),
    ...(spec.body === undefined
      ? {}
      : {
          requestBody: {
            required: !spec.body.safeParse(undefined).success,
            content: { [bodyMedia]: { schema: jsonSchemaOf(spec.body, 'input') } },
          },
        }),
    responses,
  };
}

/**
 * Builds the OpenAPI 3.1 document of the routes registered with a spec. @see OpenAPI 3.1.1
 */
export function buildOpenApiDocument(
  specs: readonly RouteSpec[],
  options: { publicUrl: string; sessionCookieName: string },
): OpenApiDocument {
  const paths: OpenApiDocument['paths'] = {};
  const usedTags = new Set<string>();
  for (const spec of specs) {
    const methods = openApiMethods(spec);
    const path = openApiPath(spec.url);
    const item = paths[path] ?? {};
    paths[path] = item;
    for (const method of methods) item[method] = operationOf(spec, method, methods.length > 1);
    for (const tag of spec.tags) usedTags.add(tag);
  }
  return {
    openapi: '3.1.1',
    info: {
      title: 'nunq-connect',
      version: '1',
      description:
        'The OAuth connections service of the nunq AI platform. Errors are `application/problem+json` ' +
        '(RFC 9457) with a stable `code`. Every GET also answers HEAD. No answer ever contains a token, ' +
        'a client secret or an authorization code.',
    },
    servers: [{ url: options.publicUrl }],
    tags: [...usedTags].map((name) => ({ name, description: tagDescriptions[name] ?? name })),
    paths,
    components: {
      schemas: { Problem: jsonSchemaOf(problemSchema, 'output') },
      securitySchemes: {
        bearerAuth: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'JWT',
          description: 'A platform JWT (`sub` = user id, optional `role: "admin"`).',
        },
        sessionCookie: {
          type: 'apiKey',
          in: 'cookie',
          name: options.sessionCookieName,
          description:
            'The session cookie from `GET /session?token=JWT`. Changes also need `x-csrf-token` (or `_csrf`).',
        },
        metricsToken: {
          type: 'http',
          scheme: 'bearer',
          description: 'The configured metrics scrape token (`metrics.token`).',
        },
      },
    },
  };
}
