/**
 * The official MCP conformance suite (client side, `@modelcontextprotocol/conformance`
 * 0.2.0-alpha.12) against the service: every browser-flow `auth/*` scenario (`list --client`,
 * all `auth/*` but the `[extension]` ones) runs with scripts/mcp-conformance/driver.ts as the
 * client (the service started from a config naming the scenario's server, a signed-in person,
 * an MCP SDK client holding only the nunq JWT calling a tool through `/mcp/:id`), and must pass
 * by the suite's own verdict. How it works: docs/conformance-notes.md.
 */
import { describe, expect, it } from 'vitest';
import {
  type ListedScenario,
  listBrowserFlowAuthScenarios,
  locateSuite,
  requiredSuiteVersion,
  runScenario,
  specVersionFor,
} from '../../scripts/mcp-conformance/run.js';

/**
 * The 12 scenarios tagged `[2026-07-28]` alone run at 2025-11-25 (`--spec-version 2025-11-25
 * --force`). At their own version the suite puts a stateless (SEP-2575) MCP server behind the
 * authorization server: no `initialize`, a `MCP-Protocol-Version` header and `_meta` on every
 * request, which MCP SDK 1.x (what the gateway is built on, up to 2025-11-25) cannot speak, so
 * the tool call after authorization could never succeed. Their authorization server and every
 * authorization check are the same at 2025-11-25, except the DCR `application_type` check
 * (SEP-837), which the suite only emits at the draft version. Set to undefined to run them as
 * the suite would by default. @see docs/conformance-notes.md
 */
const draftOnlyAt: string | undefined = '2025-11-25';

/** The 27 the issue names, so a change in the suite's listing cannot shrink the run unnoticed. */
const expected = [
  'auth/metadata-default',
  'auth/metadata-var1',
  'auth/metadata-var2',
  'auth/metadata-var3',
  'auth/basic-cimd',
  'auth/scope-from-www-authenticate',
  'auth/scope-from-scopes-supported',
  'auth/scope-omitted-when-undefined',
  'auth/scope-step-up',
  'auth/scope-retry-limit',
  'auth/token-endpoint-auth-basic',
  'auth/token-endpoint-auth-post',
  'auth/token-endpoint-auth-none',
  'auth/pre-registration',
  'auth/2025-03-26-oauth-metadata-backcompat',
  'auth/2025-03-26-oauth-endpoint-fallback',
  'auth/resource-mismatch',
  'auth/offline-access-scope',
  'auth/offline-access-not-supported',
  'auth/authorization-server-migration',
  'auth/iss-supported',
  'auth/iss-not-advertised',
  'auth/iss-supported-missing',
  'auth/iss-wrong-issuer',
  'auth/iss-unexpected',
  'auth/iss-normalized',
  'auth/metadata-issuer-mismatch',
];

let missing: Error | undefined;
let listed: ListedScenario[] = [];
try {
  locateSuite();
  listed = await listBrowserFlowAuthScenarios();
} catch (error) {
  missing = error as Error;
}

describe(`MCP conformance suite ${requiredSuiteVersion}, browser-flow auth scenarios`, () => {
  it('is installed', () => {
    if (missing !== undefined) throw missing;
  });

  it('lists exactly the 27 browser-flow auth scenarios', async () => {
    if (missing !== undefined) throw missing;
    expect(listed.map((l) => l.name).sort()).toEqual([...expected].sort());
  });

  // Without the suite each scenario fails too (not skipped), naming what is missing.
  it.each(expected)(
    '%s passes',
    async (scenario) => {
      if (missing !== undefined) throw missing;
      const entry = listed.find((l) => l.name === scenario);
      if (entry === undefined) throw new Error(`${scenario} is not listed by the suite`);
      const specVersion = specVersionFor(entry, draftOnlyAt);
      const result = await runScenario(scenario, specVersion === undefined ? {} : { specVersion });
      const report = [
        `${scenario}${specVersion === undefined ? '' : ` (at ${specVersion})`}: ${result.passed ? 'PASS' : 'FAIL'}`,
        ...result.problems.map((p) => `  - ${p}`),
        '  driver:',
        ...result.driverOutput
          .trim()
          .split('\n')
          .map((l) => `    ${l}`),
      ].join('\n');
      expect(result.passed, report).toBe(true);
      expect(result.checks.filter((c) => c.status === 'FAILURE' || c.status === 'WARNING')).toEqual([]);
    },
    240_000,
  );
});
