import { html, type SafeHtml } from '../../html.js';

/** The console's sections, on every admin page; `current` is the section's path. */
export function adminNav(current: string): SafeHtml {
  const links: Array<[string, string]> = [
    ['/admin', 'Overview'],
    ['/admin/connections', 'Connections'],
    ['/admin/providers', 'Providers'],
    ['/admin/integrations', 'Integrations'],
    ['/admin/mcp-servers', 'MCP servers'],
    ['/admin/audit', 'Audit log'],
    ['/admin/webhooks', 'Webhooks'],
  ];
  return html`<nav class="tabs" aria-label="Administration">${links.map(
    ([href, label]) =>
      html`<a href="${href}"${current === href ? html` aria-current="page"` : ''}>${label}</a>`,
  )}</nav>`;
}
