import { type Config, ConfigError, loadConfigFile } from '../config/index.js';
import { configKeySource } from '../crypto/index.js';
import { createOutbound } from '../oauth/outbound.js';
import { checkClock } from './doctor/clock.js';
import { checkProviders } from './doctor/provider-checks.js';
import {
  type CheckResult,
  type DoctorReport,
  fail,
  ok,
  renderJson,
  renderText,
  summarize,
  warn,
} from './doctor/report.js';
import { runtimeEntries } from './doctor/runtime-entries.js';
import { checkDatabase, checkKeys } from './doctor/store-checks.js';
import { describeError } from './doctor/support.js';
import { findConfigPath } from './load.js';
import type { Io } from './main.js';

/**
 * `doctor [--config FILE] [--json]`: checks a deployment without changing it (config, database
 * and migrations, keys against every stored value, each provider's and MCP server's discovery
 * through the outbound guard (the config file's and those an administrator added at run time), clock skew against the providers, publicUrl) and prints one line per check.
 * Exit 1 when a check failed; warnings do not fail. Never prints a secret or a stored value.
 */
export async function doctorCommand(
  values: { config?: string | undefined; json?: boolean | undefined },
  io: Io,
  deps: { now?: () => number } = {},
): Promise<number> {
  const report = await diagnose(values.config, io, deps.now ?? Date.now);
  io.out(values.json === true ? renderJson(report) : renderText(report));
  return summarize(report.checks).fail === 0 ? 0 : 1;
}

async function diagnose(flag: string | undefined, io: Io, now: () => number): Promise<DoctorReport> {
  let path: string | undefined;
  try {
    path = findConfigPath(flag, io);
  } catch (error) {
    if (error instanceof ConfigError) return { config: undefined, checks: configProblems(error) };
    throw error;
  }
  if (path === undefined) {
    return {
      config: undefined,
      checks: [
        fail(
          'config',
          'no config file (--config FILE, $NUNQ_CONFIG or ./nunq-connect.yaml): doctor checks a deployment; demo mode needs no checking',
        ),
      ],
    };
  }
  let config: Config;
  try {
    config = await loadConfigFile(path, io.env);
  } catch (error) {
    if (error instanceof ConfigError) return { config: path, checks: configProblems(error) };
    throw error;
  }
  const checks: CheckResult[] = [
    ok(
      'config',
      `valid (${config.providers.length} providers, ${config.integrations.length} integrations, ${config.mcpServers.length} MCP servers)`,
    ),
  ];
  const outbound = createOutbound(config.outbound);
  const networkDeps = { fetch: outbound.fetch, policy: config.outbound, now };
  // The database and the network checks run side by side; the network ones in parallel among themselves.
  const network = checkProviders(config, networkDeps);
  const database = await checkDatabase(config, io.cwd);
  let runtime: ReturnType<typeof checkProviders> | undefined;
  let runtimeCount = 0;
  try {
    checks.push(...database.results);
    checks.push(...(await checkKeys(configKeySource(config.encryption), database.store)));
    if (database.store !== undefined) {
      try {
        const entries = await runtimeEntries(database.store);
        runtimeCount = entries.providers.length + entries.mcpServers.length;
        runtime = checkProviders(entries, networkDeps, ' (console)');
      } catch (error) {
        checks.push(
          warn(
            'catalog',
            `run-time providers and MCP servers not read (${describeError(error)}): apply the migrations first`,
          ),
        );
      }
    }
  } finally {
    await database.store?.close();
  }
  const { results, samples } = await network;
  checks.push(...results);
  if (runtime !== undefined) {
    const added = await runtime;
    checks.push(...added.results);
    samples.push(...added.samples);
  }
  checks.push(checkClock(samples, config.providers.length + config.mcpServers.length + runtimeCount));
  checks.push(checkPublicUrl(config));
  return { config: path, checks };
}

/** One `config` failure per problem, `path.to.field: message` as `check-config` prints them. */
function configProblems(error: ConfigError): CheckResult[] {
  return [
    ...error.issues.map((issue) => fail('config', `${issue.path}: ${issue.message}`)),
    warn('config', 'the other checks were skipped: fix the config first (`nunq-connect check-config FILE`)'),
  ];
}

/** `server.publicUrl`: https outside demo mode, since it carries the redirect URI and the cookies' Secure flag. */
function checkPublicUrl(config: Config): CheckResult {
  const url = new URL(config.server.publicUrl);
  if (url.protocol === 'http:') {
    return warn(
      'publicUrl',
      `${config.server.publicUrl} is plain http: cookies are not Secure, authorization codes travel in clear, and MCP servers get no Client ID Metadata Document; use https (a TLS-terminating proxy with server.trustProxy) unless this is a local test`,
    );
  }
  return ok(
    'publicUrl',
    `${config.server.publicUrl} (redirect URI ${config.server.publicUrl}/oauth/callback)`,
  );
}
