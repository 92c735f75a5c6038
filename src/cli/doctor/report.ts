/** How a check came out: `fail` makes `doctor` exit 1, `warn` does not. */
export type CheckStatus = 'ok' | 'warn' | 'fail';

/**
 * One line of the report: which check (`config`, `database`, `migrations`, `keys`,
 * `provider:<id>`, `mcp:<id>`, `clock`, `publicUrl`), how it came out, and a sentence saying why
 * and what to do. Messages name fields, ids, URLs and counts, never a secret or a stored value.
 */
export interface CheckResult {
  check: string;
  status: CheckStatus;
  message: string;
}

export interface DoctorReport {
  /** The config file checked, when one was found. */
  config: string | undefined;
  checks: CheckResult[];
}

export const ok = (check: string, message: string): CheckResult => ({ check, status: 'ok', message });
export const warn = (check: string, message: string): CheckResult => ({ check, status: 'warn', message });
export const fail = (check: string, message: string): CheckResult => ({ check, status: 'fail', message });

/** Counts by status. */
export function summarize(checks: readonly CheckResult[]): Record<CheckStatus, number> {
  const counts = { ok: 0, warn: 0, fail: 0 };
  for (const c of checks) counts[c.status] += 1;
  return counts;
}

const labels: Record<CheckStatus, string> = { ok: 'ok  ', warn: 'warn', fail: 'FAIL' };

/** The report for a person: one line per check, `ok` / `warn` / `FAIL`, then a summary line. */
export function renderText(report: DoctorReport): string {
  const lines = [`nunq-connect doctor${report.config === undefined ? '' : `: ${report.config}`}`];
  for (const c of report.checks) lines.push(`${labels[c.status]}  ${c.check}: ${c.message}`);
  const n = summarize(report.checks);
  const plural = (count: number, word: string) => `${count} ${word}${count === 1 ? '' : 's'}`;
  lines.push(
    n.fail === 0
      ? `no failures (${plural(n.warn, 'warning')}, ${n.ok} ok)`
      : `${plural(n.fail, 'failure')}, ${plural(n.warn, 'warning')}, ${n.ok} ok`,
  );
  return `${lines.join('\n')}\n`;
}

/** The report for a machine: `{config, ok, summary, checks: [{check, status, message}]}`. */
export function renderJson(report: DoctorReport): string {
  const summary = summarize(report.checks);
  return `${JSON.stringify({ config: report.config ?? null, ok: summary.fail === 0, summary, checks: report.checks }, null, 2)}\n`;
}
