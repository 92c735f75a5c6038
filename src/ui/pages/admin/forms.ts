import type { Identity } from '../../../identity/identity.js';
import { html, type SafeHtml } from '../../html.js';

// The console's form parts: each field with its label, its current or typed value, and the
// errors the admin API's validation gave for it (`body.<field>: message`) right beside it. A
// secret field is always empty: a secret typed is never sent back, and a stored one never shown.

/** One refusal of one field, as the admin API words it: `body.clientId`, `required`. */
export interface FieldError {
  path: string;
  message: string;
}

/** The values of a form as typed (or as stored, on first display); checkboxes are `on` or absent. */
export type FormValues = Readonly<Record<string, string | undefined>>;

/** The errors about `body.<path>` and anything under it (`body.scopes.0`, `body.api.baseUrl`). */
export function errorsAt(errors: readonly FieldError[], path: string): FieldError[] {
  const at = `body.${path}`;
  return errors.filter((e) => e.path === at || e.path.startsWith(`${at}.`));
}

/** "Nothing was saved", with every error (those beside a field too, so none is missed). */
export function errorSummary(errors: readonly FieldError[]): SafeHtml | string {
  if (errors.length === 0) return '';
  return html`<div class="flash flash-error" role="alert" data-testid="form-errors"><p>Nothing was saved:</p><ul>${errors.map(
    (e) => html`<li><code>${e.path}</code>: ${e.message}</li>`,
  )}</ul></div>`;
}

function errorLine(id: string, errors: readonly FieldError[]): SafeHtml | string {
  if (errors.length === 0) return '';
  return html`<p class="field-error" id="${id}-error">${errors.map((e) => e.message).join('; ')}</p>`;
}

const invalid = (id: string, errors: readonly FieldError[]) =>
  errors.length === 0 ? '' : html` aria-invalid="true" aria-describedby="${id}-error"`;

/** A text field; `path` is the API field its errors are reported on (default: its name). */
export function textField(o: {
  name: string;
  label: string;
  values: FormValues;
  errors: readonly FieldError[];
  path?: string;
  required?: boolean;
  placeholder?: string;
  hint?: string;
}): SafeHtml {
  const id = `f-${o.name}`;
  const errors = errorsAt(o.errors, o.path ?? o.name);
  return html`<label for="${id}">${o.label}</label>${o.hint === undefined ? '' : html`<p class="muted hint">${o.hint}</p>`}<input type="text" id="${id}" name="${o.name}" value="${o.values[o.name] ?? ''}"${o.required ? html` required` : ''}${o.placeholder === undefined ? '' : html` placeholder="${o.placeholder}"`} autocomplete="off"${invalid(id, errors)}>${errorLine(id, errors)}`;
}

/** A select; an empty first option when `empty` is given (its label). */
export function selectField(o: {
  name: string;
  label: string;
  values: FormValues;
  errors: readonly FieldError[];
  options: ReadonlyArray<readonly [string, string]>;
  empty?: string;
}): SafeHtml {
  const id = `f-${o.name}`;
  const errors = errorsAt(o.errors, o.name);
  const current = o.values[o.name] ?? '';
  return html`<label for="${id}">${o.label}</label><select id="${id}" name="${o.name}"${invalid(id, errors)}>${
    o.empty === undefined ? '' : html`<option value="">${o.empty}</option>`
  }${o.options.map(
    ([value, label]) =>
      html`<option value="${value}"${value === current ? html` selected` : ''}>${label}</option>`,
  )}</select>${errorLine(id, errors)}`;
}

export function checkField(o: { name: string; label: string; values: FormValues }): SafeHtml {
  return html`<label class="check"><input type="checkbox" name="${o.name}"${o.values[o.name] === 'on' ? html` checked` : ''}> ${o.label}</label>`;
}

/**
 * A write-only secret: whether one is set and when it changed, an empty password field ("leave
 * empty to keep"), and, where clearing it can be valid, a "clear" checkbox.
 */
export function secretField(o: {
  name: string;
  label: string;
  errors: readonly FieldError[];
  isSet: boolean;
  changedAt: number | null;
  clearable: boolean;
  values: FormValues;
}): SafeHtml {
  const id = `f-${o.name}`;
  const errors = errorsAt(o.errors, o.name);
  const status = o.isSet
    ? `set${o.changedAt === null ? '' : `, changed at ${isoMinute(o.changedAt)}`}`
    : 'not set';
  return html`<label for="${id}">${o.label}</label><p class="muted hint" data-testid="secret-status">Currently ${status}. Never shown; leave empty to keep it.</p><input type="password" id="${id}" name="${o.name}" value="" autocomplete="new-password"${invalid(id, errors)}>${errorLine(id, errors)}${
    o.clearable && o.isSet
      ? checkField({ name: 'clearSecret', label: 'Clear the stored secret', values: o.values })
      : ''
  }`;
}

export function csrfField(admin: Identity): SafeHtml {
  return html`<input type="hidden" name="_csrf" value="${admin.csrfToken ?? ''}">`;
}

/** A time as `2026-01-31 12:34 UTC`. */
export function isoMinute(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}
