import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { mayAccess } from '../../connections/access.js';
import type { AggregateRequest } from '../../gateway/mcp/aggregate.js';
import type { McpGateway } from '../../gateway/mcp/index.js';
import type { GatewayAnswer, GatewayRequest } from '../../gateway/mcp/integration-gateway.js';
import type { Identity } from '../../identity/identity.js';
import type { FastAnswer } from '../fast-routes.js';
import { defineRoute, documented, problem, type ResponseSpec } from '../openapi/route-spec.js';
import { Problem, unauthenticated } from '../problem.js';

const streamableHttp =
  'MCP Streamable HTTP (MCP 2025-11-25, Basic / Transports): POST a JSON-RPC message (answered ' +
  'as JSON or an SSE stream), GET for the server-to-client stream, DELETE to end the session ' +
  '(`Mcp-Session-Id`). When the user must connect or reconnect first, a client with the ' +
  '`elicitation.url` capability gets JSON-RPC error -32042 with the URL; others get a tool result ' +
  'with `isError: true` naming it. The upstream never sees the caller’s credential.';
const gatewayResponses: Record<number, ResponseSpec> = {
  200: {
    description: 'A JSON-RPC answer (application/json) or an event stream',
    contentType: 'text/event-stream',
  },
  202: { description: 'A notification or response was accepted' },
  401: {
    description: 'No valid bearer token (a session cookie is not accepted)',
    problem: true,
    headers: { 'www-authenticate': 'Bearer realm="nunq-connect"' },
  },
};

const perIntegrationSpec = defineRoute({
  method: ['POST', 'GET', 'DELETE'],
  url: '/mcp/:integrationId',
  operationId: 'mcpGateway',
  summary: 'MCP gateway for one MCP server integration',
  description: `${streamableHttp} Speaks to the server with the user’s token.`,
  tags: ['MCP gateway'],
  auth: 'bearer',
  responses: {
    ...gatewayResponses,
    404: problem('integration_not_found: no MCP server integration has this id'),
    409: problem('integration_disabled'),
  },
});

const aggregateSpec = defineRoute({
  method: ['POST', 'GET', 'DELETE'],
  url: '/mcp',
  operationId: 'mcpAggregateGateway',
  summary: 'MCP gateway over every MCP server the user has connected',
  description: `${streamableHttp} Tools, prompts and resources are named \`<integrationId>__<name>\`.`,
  tags: ['MCP gateway'],
  auth: 'bearer',
  responses: gatewayResponses,
});

/** RFC 6750 §3: the gateway takes a bearer token and nothing else. */
const bearerChallenge = 'Bearer realm="nunq-connect"';
/** Request bodies are read whole (JSON-RPC messages are inspected, and replayed after a 401). */
const maxBodyBytes = 1024 * 1024;

/**
 * `/mcp/:integrationId` and the aggregate `/mcp`: the MCP gateway over
 * Streamable HTTP, for bearer callers only. @see MCP 2025-11-25, Basic / Transports
 */
export async function registerMcpRoutes(app: FastifyInstance, gateway: McpGateway): Promise<void> {
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: maxBodyBytes }, (_req, body, done) =>
      done(null, body),
    );
    scope.addHook('onError', async (_request, reply, error) => {
      if ((error as { status?: number }).status === 401) reply.header('www-authenticate', bearerChallenge);
    });
    scope.route(documented(perIntegrationSpec, (request, reply) => perIntegration(gateway, request, reply)));
    scope.route(documented(aggregateSpec, (request, reply) => aggregate(gateway, request, reply)));
  });
  // The POSTs (every JSON-RPC message a client sends) skip Fastify's cycle when plain.
  const challengeHeaders = { 'www-authenticate': bearerChallenge };
  app.fastRoutes.add<string>({
    url: perIntegrationSpec.url,
    postBodyLimit: maxBodyBytes,
    challengeHeaders,
    match: (method, url) => (method === 'POST' ? integrationIdIn(url) : undefined),
    handle: async ({ params, identity, request, body }) =>
      fastAnswer(
        await gateway.perIntegration.post(
          await integrationRequest(gateway, identity, params, request.headers, body),
        ),
      ),
  });
  app.fastRoutes.add<true>({
    url: aggregateSpec.url,
    postBodyLimit: maxBodyBytes,
    challengeHeaders,
    match: (method, url) => (method === 'POST' && aggregateUrl.test(url) ? true : undefined),
    handle: async ({ identity, request, body }) =>
      fastAnswer(await gateway.aggregate.post(aggregateRequest(identity, request.headers, body))),
  });
}

/** `/mcp`, alone or with a query: what find-my-way routes to the aggregate. */
const aggregateUrl = /^\/mcp(?:\?|$)/;
/** `/mcp/<id>` with an id of plain characters (find-my-way's default `maxParamLength` is 100). */
const integrationUrl = /^\/mcp\/([A-Za-z0-9._~-]{1,100})(?:\?|$)/;

/**
 * The integration id when the fast route takes this URL as sent: one the router would give the
 * same id. Anything encoded (the router decodes it) or with other characters goes to Fastify.
 */
function integrationIdIn(url: string): string | undefined {
  return integrationUrl.exec(url)?.[1];
}

/** A gateway answer for the fast path, with the `Content-Length: 0` Fastify gives an empty one. */
function fastAnswer(answer: GatewayAnswer): FastAnswer {
  const headers = { ...answer.headers };
  if (answer.body === undefined && answer.status !== 204 && answer.status !== 304)
    headers['content-length'] = '0';
  return { statusCode: answer.status, headers, body: answer.body };
}

async function perIntegration(gateway: McpGateway, request: FastifyRequest, reply: FastifyReply) {
  const identity = bearerIdentity(request);
  const { integrationId } = request.params as { integrationId: string };
  const req = await integrationRequest(gateway, identity, integrationId, request.headers, bodyOf(request));
  return send(reply, await byMethod(gateway.perIntegration, request.method, req));
}

/** The request for `/mcp/:integrationId`; 404 for an integration the caller may not see, 409 for a disabled one. */
async function integrationRequest(
  gateway: McpGateway,
  identity: Identity,
  integrationId: string,
  headers: GatewayRequest['headers'],
  body: Buffer | undefined,
): Promise<GatewayRequest> {
  const integration = await gateway.integrations.get(integrationId);
  // Limited to groups the caller is in none of: as if it did not exist.
  if (integration === undefined || !mayAccess(integration, identity.groups)) {
    throw new Problem(404, 'integration_not_found', 'Not Found', 'No MCP server integration has this id.');
  }
  if (!integration.enabled) {
    throw new Problem(
      409,
      'integration_disabled',
      'Conflict',
      'This integration is disabled by an administrator.',
    );
  }
  return { userId: identity.userId, integration, headers, ...(body === undefined ? {} : { body }) };
}

async function aggregate(gateway: McpGateway, request: FastifyRequest, reply: FastifyReply) {
  const identity = bearerIdentity(request);
  const req = aggregateRequest(identity, request.headers, bodyOf(request));
  return send(reply, await byMethod(gateway.aggregate, request.method, req));
}

/** Either gateway's handler for a method of its routes (POST, GET or DELETE). */
function byMethod<R>(
  gateway: Record<'post' | 'get' | 'delete', (req: R) => Promise<GatewayAnswer>>,
  method: string,
  req: R,
): Promise<GatewayAnswer> {
  return method === 'POST' ? gateway.post(req) : method === 'GET' ? gateway.get(req) : gateway.delete(req);
}

/** The body the scope's buffer parser read, if any. */
function bodyOf(request: FastifyRequest): Buffer | undefined {
  return Buffer.isBuffer(request.body) ? request.body : undefined;
}

function aggregateRequest(
  identity: Identity,
  headers: AggregateRequest['headers'],
  body: Buffer | undefined,
): AggregateRequest {
  return {
    userId: identity.userId,
    groups: identity.groups,
    headers,
    ...(body === undefined ? {} : { body }),
  };
}

/** The caller: a nunq JWT as `Authorization: Bearer`, never a session cookie. */
function bearerIdentity(request: FastifyRequest): Identity {
  const identity = request.identity;
  if (identity === undefined || identity.via !== 'bearer') {
    throw unauthenticated('The MCP gateway takes an Authorization: Bearer token only.');
  }
  return identity;
}

function send(reply: FastifyReply, answer: GatewayAnswer) {
  reply.code(answer.status);
  reply.headers(answer.headers);
  return reply.send(answer.body);
}
