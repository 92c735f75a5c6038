import type { Identity } from '../identity/identity.js';
import { html, type SafeHtml } from './html.js';

export interface PageOptions {
  title: string;
  identity?: Identity | undefined;
  body: SafeHtml;
  /** Shown in a live region at the top: the outcome of a flow, an error. */
  flash?: { kind: 'success' | 'error' | 'info'; text: string } | undefined;
}

/** The page shell: one stylesheet served by us, no external CDN, a skip link, a live region. */
export function layout(p: PageOptions): SafeHtml {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<title>${p.title} · nunq connect</title>
<link rel="stylesheet" href="/assets/app.css">
${p.identity ? html`<script src="/assets/app.js" defer></script>` : ''}
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="top">
  <a class="brand" href="/">nunq <span>connect</span></a>
  <nav aria-label="Account">
    ${
      p.identity
        ? html`${p.identity.role === 'admin' ? html`<a href="/admin">Admin</a>` : ''}
    <span class="who" data-testid="signed-in-as">${p.identity.name ?? p.identity.userId}</span>
    ${
      p.identity.via === 'session'
        ? html`<form method="post" action="/logout" class="inline"><input type="hidden" name="_csrf" value="${p.identity.csrfToken}"><button class="link" type="submit">Sign out</button></form>`
        : ''
    }`
        : ''
    }
  </nav>
</header>
<main id="main" tabindex="-1">
<div id="flash" role="status" aria-live="polite">${
    p.flash ? html`<p class="flash flash-${p.flash.kind}" data-testid="flash">${p.flash.text}</p>` : ''
  }</div>
${p.body}
</main>
</body>
</html>`;
}
