import type { OpenApiDocument, OpenApiOperation } from '../../http/openapi/document.js';
import { html, type SafeHtml } from '../html.js';
import { layout } from '../layout.js';

const authText = (security: OpenApiOperation['security']): string => {
  if (security.length === 0) return 'anyone';
  return security.map((s) => Object.keys(s).join(' + ')).join(' or ');
};

const schemaBlock = (schema: unknown): SafeHtml =>
  html`<details><summary>Schema</summary><pre><code>${JSON.stringify(schema, null, 2)}</code></pre></details>`;

function operationSection(path: string, method: string, op: OpenApiOperation): SafeHtml {
  const anchor = op.operationId;
  return html`<section class="card" id="${anchor}" aria-labelledby="${anchor}-title">
<h3 id="${anchor}-title"><code>${method.toUpperCase()} ${path}</code></h3>
<p>${op.summary}</p>
${op.description === undefined ? '' : html`<p class="muted">${op.description}</p>`}
<p><strong>Who:</strong> ${authText(op.security)} · <strong>operationId:</strong> <code>${op.operationId}</code></p>
${
  op.parameters === undefined
    ? ''
    : html`<table><caption>Parameters</caption><thead><tr><th scope="col">Name</th><th scope="col">In</th><th scope="col">Required</th><th scope="col">Schema</th></tr></thead><tbody>
${op.parameters.map((p) => html`<tr><td><code>${p.name}</code>${p.description === undefined ? '' : html`<br><span class="muted">${p.description}</span>`}</td><td>${p.in}</td><td>${p.required ? 'yes' : 'no'}</td><td><code>${JSON.stringify(p.schema)}</code></td></tr>`)}
</tbody></table>`
}
${
  op.requestBody === undefined
    ? ''
    : html`<h4>Request body${op.requestBody.required ? '' : ' (optional)'}</h4>${Object.entries(op.requestBody.content).map(([type, c]) => html`<p><code>${type}</code></p>${schemaBlock(c.schema)}`)}`
}
<h4>Responses</h4>
<ul>
${Object.entries(op.responses).map(
  ([status, r]) =>
    html`<li><strong>${status}</strong> ${r.description}${Object.keys(r.content ?? {}).map((t) => html` <code>${t}</code>`)}${
      r.content?.['application/json'] === undefined ? '' : schemaBlock(r.content['application/json'].schema)
    }</li>`,
)}
</ul>
</section>`;
}

/** `GET /api/v1/docs`: the OpenAPI document as a page (server-rendered, no script, no external asset). */
export function apiReferencePage(doc: OpenApiDocument): SafeHtml {
  const byTag = doc.tags.map((tag) => ({
    tag,
    operations: Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.entries(item)
        .filter(([, op]) => op.tags.includes(tag.name))
        .map(([method, op]) => ({ path, method, op })),
    ),
  }));
  return layout({
    title: 'API reference',
    body: html`<h1>API reference</h1>
<p class="lede">${doc.info.description} The machine-readable document: <a href="/api/v1/openapi.json">/api/v1/openapi.json</a> (OpenAPI ${doc.openapi}).</p>
<nav aria-label="Sections"><ul>${byTag.map(({ tag }) => html`<li><a href="#tag-${tag.name.replaceAll(' ', '-')}">${tag.name}</a></li>`)}</ul></nav>
${byTag.map(
  ({ tag, operations }) => html`<h2 id="tag-${tag.name.replaceAll(' ', '-')}">${tag.name}</h2>
<p class="muted">${tag.description}</p>
${operations.map(({ path, method, op }) => operationSection(path, method, op))}`,
)}
<h2>Errors</h2>
<p>Every error is <code>application/problem+json</code>:</p>
${schemaBlock(doc.components.schemas.Problem)}`,
  });
}
