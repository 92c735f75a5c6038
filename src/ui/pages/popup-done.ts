import { createHash } from 'node:crypto';
import type { ConnectOutcome } from '../../client/popup.js';
import { html, raw, type SafeHtml } from '../html.js';
import { layout } from '../layout.js';

/** What the popup tells its opener: the type `nunq-connect/client`'s `connect()` resolves with. */
export type PopupOutcomeMessage = ConnectOutcome;

/**
 * The page's only script, constant so the CSP can allow it by its hash: it posts the message to
 * each configured origin by name (never `*`): the browser delivers it only when the opener has
 * that origin, so an opener elsewhere receives nothing. @see WHATWG HTML §9.3.3 (postMessage)
 */
const script =
  "(function(){var el=document.getElementById('nunq-outcome');" +
  "var message=JSON.parse(el.getAttribute('data-message'));" +
  "var origins=JSON.parse(el.getAttribute('data-origins'));" +
  'if(!window.opener)return;' +
  'for(var i=0;i<origins.length;i++)window.opener.postMessage(message,origins[i]);' +
  'window.close();})();';

/** The CSP source that allows exactly `script`. @see CSP Level 3 §8.3 (hash-source) */
export const popupScriptHash = `'sha256-${createHash('sha256').update(script).digest('base64')}'`;

const texts: Record<PopupOutcomeMessage['outcome'], string> = {
  connected: 'Connected.',
  reconnected: 'Reconnected.',
  denied: 'You did not grant access, so nothing was connected.',
  failed: 'The connection could not be completed. Nothing was changed.',
  cancelled: 'Cancelled. Nothing was connected.',
};

/** The end of a popup Connect: says the outcome and hands it to the opener, then closes. */
export function popupDonePage(message: PopupOutcomeMessage, origins: readonly string[]): SafeHtml {
  return layout({
    title: texts[message.outcome],
    body: html`<section class="narrow">
<h1 data-testid="popup-outcome">${texts[message.outcome]}</h1>
<p>You can close this window.</p>
<div id="nunq-outcome" hidden data-message="${JSON.stringify(message)}" data-origins="${JSON.stringify(origins)}"></div>
<script>${raw(script)}</script>
</section>`,
  });
}
