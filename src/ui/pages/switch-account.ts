import type { Identity } from '../../identity/identity.js';
import { html, type SafeHtml } from '../html.js';
import { layout } from '../layout.js';

/** A user as a page names them: the display name (when there is one) and the id. */
export function userLabel(user: { userId: string; name: string | null }): SafeHtml {
  return user.name !== null && user.name !== user.userId
    ? html`<strong>${user.name}</strong> (<code>${user.userId}</code>)`
    : html`<strong><code>${user.userId}</code></strong>`;
}

/**
 * Asked when a sign-in link names another user than the browser's session: the link may come
 * from someone else (login CSRF), so switching takes a click on this page, a POST with the
 * current session's CSRF token. The token travels in the form, on our origin only.
 */
export function switchAccountPage(options: {
  current: Identity;
  next: { userId: string; name: string | null };
  token: string;
  returnTo: string;
}): SafeHtml {
  const { current, next } = options;
  return layout({
    title: 'Switch account?',
    identity: current,
    body: html`<section class="narrow">
<h1>Switch account?</h1>
<p data-testid="switch-text">You are signed in as ${userLabel(current)}. A sign-in link asks to sign you in as ${userLabel(next)} instead.</p>
<p>Continue only if you opened this link yourself. Anything you connect afterwards is connected for the account you are signed in as.</p>
<form method="post" action="/session" class="inline">
  <input type="hidden" name="_csrf" value="${current.csrfToken ?? ''}">
  <input type="hidden" name="token" value="${options.token}">
  <input type="hidden" name="return_to" value="${options.returnTo}">
  <button type="submit" data-testid="switch-continue">Continue as ${next.name ?? next.userId}</button>
</form>
<a class="button secondary" href="/" data-testid="switch-stay">Stay signed in as ${current.name ?? current.userId}</a>
</section>`,
  });
}
