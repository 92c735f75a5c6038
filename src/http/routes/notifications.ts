import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { adminsAudience } from '../../notify/notifications.js';
import { requireUser } from '../auth.js';
import type { AppContext } from '../context.js';
import { defineRoute, problem, withSpec } from '../openapi/route-spec.js';
import { notificationSchema } from '../openapi/schemas.js';
import { notFound } from '../problem.js';
import { parseInput } from '../validate.js';

const idParams = z.strictObject({ id: z.uuid().describe('The notification id') });

export const listNotifications = defineRoute({
  method: 'GET',
  url: '/api/v1/notifications',
  operationId: 'listNotifications',
  summary: 'The user’s notifications, newest first (an admin also sees the administrators’ ones)',
  tags: ['Notifications'],
  auth: 'user',
  responses: { 200: { description: 'Notifications', json: z.array(notificationSchema) } },
});

export const markNotificationRead = defineRoute({
  method: 'POST',
  url: '/api/v1/notifications/:id/read',
  operationId: 'markNotificationRead',
  summary: 'Mark a notification read',
  tags: ['Notifications'],
  auth: 'user',
  params: idParams,
  responses: {
    204: { description: 'Marked read' },
    404: problem('No such notification, or not this user’s'),
  },
});

const eventsHeaders = z.object({
  'last-event-id': z.coerce.number().int().nonnegative().optional(),
});

export const streamEvents = defineRoute({
  method: 'GET',
  url: '/api/v1/events',
  operationId: 'streamEvents',
  summary: 'Server-sent events: connection status changes and notifications',
  description:
    'A `text/event-stream` (WHATWG HTML §9.2). Each event has an `id` (send it back as ' +
    '`Last-Event-ID` to resume), a type such as `connection.needs_reauth`, and JSON data. ' +
    'A comment line every 15 s keeps the stream open.',
  tags: ['Notifications'],
  auth: 'user',
  responses: { 200: { description: 'The event stream', contentType: 'text/event-stream' } },
});

/**
 * `GET /api/v1/notifications`, `POST /api/v1/notifications/:id/read`, and `GET /api/v1/events`
 * (server-sent events). SSE reads the shared `events` table, so an event written by any
 * instance reaches a stream held by any other. @see WHATWG HTML §9.2 (server-sent events)
 */
export function registerNotificationRoutes(app: FastifyInstance, ctx: AppContext, pollMs = 1000): void {
  const publicUrl = ctx.config.server.publicUrl;
  // Open event streams end when the service shuts down, so close() does not wait on them.
  const streams = new Set<() => void>();
  app.addHook('preClose', async () => {
    for (const end of streams) end();
  });

  app.get(listNotifications.url, withSpec(listNotifications), async (request) => {
    const identity = requireUser(request, publicUrl);
    const mine = await ctx.notifications.list(identity.userId);
    const forAdmins = identity.role === 'admin' ? await ctx.notifications.list(adminsAudience) : [];
    return [...mine, ...forAdmins];
  });

  app.post(markNotificationRead.url, withSpec(markNotificationRead), async (request, reply) => {
    const identity = requireUser(request, publicUrl);
    const parsed = idParams.safeParse(request.params);
    if (!parsed.success) throw notFound('There is no such notification.');
    const ok =
      (await ctx.notifications.markRead(identity.userId, parsed.data.id)) ||
      (identity.role === 'admin' && (await ctx.notifications.markRead(adminsAudience, parsed.data.id)));
    if (!ok) throw notFound('There is no such notification.');
    return reply.code(204).send();
  });

  app.get(streamEvents.url, withSpec(streamEvents), async (request, reply) => {
    const identity = requireUser(request, publicUrl);
    const lastEventId = parseInput(
      eventsHeaders,
      { 'last-event-id': request.headers['last-event-id'] },
      'header',
    )['last-event-id'];
    let cursor = lastEventId ?? (await ctx.notifications.latestEventId(identity.userId));
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write('retry: 3000\n\n');
    let closed = false;
    let sinceBeat = 0;
    let wake: () => void = () => {};
    const end = () => {
      closed = true;
      wake();
    };
    streams.add(end);
    request.raw.on('close', end);
    while (!closed) {
      try {
        const events = await ctx.notifications.eventsAfter(identity.userId, cursor);
        for (const e of events) {
          res.write(`id: ${e.id}\nevent: ${e.type}\ndata: ${e.data}\n\n`);
          cursor = e.id;
        }
        sinceBeat += pollMs;
        if (sinceBeat >= 15_000) {
          res.write(': keep-alive\n\n');
          sinceBeat = 0;
        }
      } catch (error) {
        request.log.warn({ err: error }, 'event stream poll failed');
      }
      await new Promise<void>((r) => {
        const t = setTimeout(r, pollMs);
        wake = () => {
          clearTimeout(t);
          r();
        };
      });
    }
    streams.delete(end);
    res.end();
  });
}
