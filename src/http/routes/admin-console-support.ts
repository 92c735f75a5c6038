import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Identity } from '../../identity/identity.js';
import type { FieldError } from '../../ui/pages/admin/forms.js';
import { requireAdmin } from '../auth.js';
import type { AppContext } from '../context.js';
import { Problem } from '../problem.js';
import { sendPage, signInRedirect } from './pages.js';

// What every console page handler shares: the page guard (sign in first, then administrators
// only: 404 for anyone else), and a refusal of the shared catalog or webhook actions turned into
// the errors a form shows beside its fields.

/**
 * The console's page guard: a browser that is not signed in is sent to sign in (undefined is
 * returned and the reply is sent); a signed-in non-admin gets 404 (thrown). Form POSTs use
 * `requireAdmin` directly, which also checks the CSRF token.
 */
export function adminPageGuard(
  ctx: AppContext,
): (request: FastifyRequest, reply: FastifyReply) => Identity | undefined {
  const publicUrl = ctx.config.server.publicUrl;
  return (request, reply) => {
    if (request.identity === undefined) {
      signInRedirect(ctx, request, reply);
      return undefined;
    }
    return requireAdmin(request, publicUrl);
  };
}

/**
 * The field errors of a refusal (a Problem's `errors`, each `body.<field>: message` as the API
 * words it), or its detail as one error of the whole form. Anything else is rethrown.
 */
export function fieldErrorsOf(error: unknown): FieldError[] {
  if (!(error instanceof Problem)) throw error;
  const listed = error.extra.errors as FieldError[] | undefined;
  return listed ?? [{ path: 'body', message: error.detail ?? error.title }];
}

/** Sends a console page with a status other than 200 (a form sent back, a refusal). */
export function sendPageWith(reply: FastifyReply, status: number, body: string): FastifyReply {
  return sendPage(reply.code(status), body);
}
