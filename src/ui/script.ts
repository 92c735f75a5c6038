/**
 * The page's only script (served from /assets/app.js, allowed by the CSP's `script-src 'self'`):
 * listens to the user's server-sent events and reloads the Integrations page when a connection
 * changes status or a notification arrives, so a "Needs reconnecting" banner appears live.
 */
export const script = `(() => {
  if (!('EventSource' in window) || location.pathname !== '/') return;
  const events = new EventSource('/api/v1/events');
  const refresh = () => { if (document.visibilityState === 'visible') location.replace('/'); else pending = true; };
  let pending = false;
  events.addEventListener('connection.status', refresh);
  events.addEventListener('notification', refresh);
  document.addEventListener('visibilitychange', () => { if (pending && document.visibilityState === 'visible') location.replace('/'); });
})();
`;
