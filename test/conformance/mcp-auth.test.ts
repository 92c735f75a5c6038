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
  listBrowserFlowAuthScenarios,
  locateSuite,
  requiredSuiteVersion,
  runScenario,
} from '../../scripts/mcp-conformance/run.js';

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
try {
  locateSuite();
} catch (error) {
  missing = error as Error;
}

describe(`MCP conformance suite ${requiredSuiteVersion}, browser-flow auth scenarios`, () => {
  it('is installed', () => {
    if (missing !== undefined) throw missing;
  });

  it('lists exactly the 27 browser-flow auth scenarios', async () => {
    if (missing !== undefined) throw missing;
    expect((await listBrowserFlowAuthScenarios()).sort()).toEqual([...expected].sort());
  });

  // Without the suite each scenario fails too (not skipped), naming what is missing.
  it.each(expected)(
    '%s passes',
    async (scenario) => {
      if (missing !== undefined) throw missing;
      const result = await runScenario(scenario);
      const report = [
        `${scenario}: ${result.passed ? 'PASS' : 'FAIL'}`,
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
