import { PopupError } from './problem-error.js';

/** What the service's popup posts to its opener when a Connect ends (`/embed/done`). */
export interface ConnectOutcome {
  type: 'nunq-connect';
  outcome: 'connected' | 'reconnected' | 'denied' | 'failed' | 'cancelled';
  integration: string;
  connectionId?: string;
  reason?: string;
}

/** The part of `window` that `connect()` uses (so tests and frames can pass their own). */
export interface PopupHost {
  open(url: string, target: string, features: string): PopupWindow | null;
  addEventListener(type: 'message', listener: (event: MessageEvent) => void): void;
  removeEventListener(type: 'message', listener: (event: MessageEvent) => void): void;
}

export interface PopupWindow {
  readonly closed: boolean;
}

export interface ConnectOptions {
  /** The window that opens the popup (default: the global `window`). */
  window?: PopupHost;
  /** `window.open` features (default a 520×720 popup). */
  features?: string;
  /**
   * A sign-in hand-off JWT, for a browser without a session at the service yet: the popup goes
   * through `/session?token=` first (accepted once when it has a `jti`).
   */
  handOffToken?: string;
  /** How often to look whether the popup was closed (ms, default 250). */
  pollMs?: number;
}

/**
 * Opens the service's Connect confirmation as a popup and resolves with the outcome it posts
 * back; rejects with `PopupError` when the popup is blocked or closed first. Call it from a
 * click handler (browsers block popups opened later). Only messages from the service's origin
 * and from this popup count. The outcome is a hint to refresh from: read the connection
 * through the API before trusting it.
 */
export function openConnectPopup(
  baseUrl: string,
  integration: string,
  options: ConnectOptions = {},
): Promise<ConnectOutcome> {
  const host = options.window ?? (globalThis as { window?: PopupHost }).window;
  if (host === undefined) return Promise.reject(new PopupError('no_window'));
  const serviceOrigin = new URL(baseUrl).origin;
  const connectPath = `/connect/${encodeURIComponent(integration)}?display=popup`;
  const url =
    options.handOffToken === undefined
      ? `${serviceOrigin}${connectPath}`
      : `${serviceOrigin}/session?${new URLSearchParams({ token: options.handOffToken, return_to: connectPath })}`;
  const popup = host.open(url, 'nunq-connect', options.features ?? 'popup,width=520,height=720');
  if (popup === null) return Promise.reject(new PopupError('blocked'));
  return new Promise<ConnectOutcome>((resolve, reject) => {
    let settled = false;
    const finish = () => {
      settled = true;
      host.removeEventListener('message', onMessage);
      clearInterval(timer);
    };
    const onMessage = (event: MessageEvent) => {
      if (settled || event.origin !== serviceOrigin || event.source !== popup) return;
      const data = event.data as Partial<ConnectOutcome> | null;
      if (data?.type !== 'nunq-connect' || data.integration !== integration) return;
      finish();
      resolve(data as ConnectOutcome);
    };
    const timer = setInterval(() => {
      if (!popup.closed || settled) return;
      clearInterval(timer);
      // The popup posts and then closes itself: let a message already on its way arrive first.
      setTimeout(() => {
        if (settled) return;
        finish();
        reject(new PopupError('closed'));
      }, 500);
    }, options.pollMs ?? 250);
    host.addEventListener('message', onMessage);
  });
}
