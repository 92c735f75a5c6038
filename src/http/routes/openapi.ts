import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { apiReferencePage } from '../../ui/pages/api-reference.js';
import type { AppContext } from '../context.js';
import { buildOpenApiDocument, type OpenApiDocument } from '../openapi/document.js';
import { defineRoute, documented } from '../openapi/route-spec.js';
import type { RouteTable } from '../openapi/route-table.js';

export const openApiPath = '/api/v1/openapi.json';

const getOpenApi = defineRoute({
  method: 'GET',
  url: openApiPath,
  operationId: 'getOpenApi',
  summary: 'This document (OpenAPI 3.1)',
  tags: ['Operations'],
  auth: 'none',
  responses: {
    200: { description: 'The OpenAPI document', json: z.object({ openapi: z.string() }).loose() },
  },
});

const apiDocs = defineRoute({
  method: 'GET',
  url: '/api/v1/docs',
  operationId: 'apiDocs',
  summary: 'This document as a readable page',
  tags: ['Operations'],
  auth: 'none',
  responses: { 200: { description: 'HTML page', contentType: 'text/html' } },
});

/**
 * `GET /api/v1/openapi.json` and `GET /api/v1/docs`: the document of every route registered with a
 * spec, built once on first request (when every route is known), for anyone.
 */
export function registerOpenApiRoutes(app: FastifyInstance, ctx: AppContext, table: RouteTable): void {
  let document: { json: string; value: OpenApiDocument } | undefined;
  const current = () => {
    if (document === undefined) {
      const value = buildOpenApiDocument(table.specs(), {
        publicUrl: ctx.config.server.publicUrl,
        sessionCookieName: ctx.auth.cookieName,
      });
      document = { value, json: JSON.stringify(value) };
    }
    return document;
  };

  app.route(
    documented(getOpenApi, async (_request, reply) =>
      reply
        .type('application/json; charset=utf-8')
        .header('cache-control', 'public, max-age=300')
        .send(current().json),
    ),
  );

  app.route(
    documented(apiDocs, async (_request, reply) =>
      reply.type('text/html; charset=utf-8').send(apiReferencePage(current().value).value),
    ),
  );
}
