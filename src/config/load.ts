import { constants, existsSync, type Stats } from 'node:fs';
import { open } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import YAML from 'yaml';
import {
  ConfigError,
  type ConfigIssue,
  filePath,
  formatPath,
  issuesFromZod,
  isWithinPath,
  yamlPath,
} from './errors.js';
import { type Config, configSchema } from './schema.js';

export type Env = Record<string, string | undefined>;

/** The file looked for in the working directory when neither `--config` nor `$NUNQ_CONFIG` is set. */
export const defaultConfigFileName = 'nunq-connect.yaml';

/** `$${` (a literal `${`), `${NAME}`, or a `${` that starts no valid reference. */
const referencePattern = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$\{/g;

/**
 * Replaces `${NAME}` with `env.NAME` in every string of a parsed document (keys are left
 * alone); `$${` stands for a literal `${`. Substituted text is not scanned again. An unset
 * variable becomes an issue at the field's path; issues name variables, never values.
 */
export function substituteEnv(value: unknown, env: Env): { value: unknown; issues: ConfigIssue[] } {
  const issues: ConfigIssue[] = [];
  const walk = (node: unknown, path: PropertyKey[]): unknown => {
    if (typeof node === 'string') return substituteString(node, env, formatPath(path), issues);
    if (Array.isArray(node)) return node.map((item, i) => walk(item, [...path, i]));
    if (node !== null && typeof node === 'object') {
      // fromEntries defines own properties, so a `__proto__` key stays a plain (unknown) field.
      return Object.fromEntries(
        Object.entries(node).map(([key, child]) => [key, walk(child, [...path, key])]),
      );
    }
    return node;
  };
  return { value: walk(value, []), issues };
}

function substituteString(text: string, env: Env, path: string, issues: ConfigIssue[]): string {
  if (!text.includes('${')) return text;
  return text.replace(referencePattern, (match, name: string | undefined) => {
    if (match === '$${') return '${';
    if (name === undefined) {
      issues.push({
        path,
        // biome-ignore lint/suspicious/noTemplateCurlyInString: the message describes the syntax
        message: 'has a malformed ${...} reference (use ${NAME}, or $${ for a literal ${)',
      });
      return match;
    }
    const replacement = env[name];
    if (replacement === undefined) {
      issues.push({ path, message: `environment variable ${name} is not set` });
      return '';
    }
    return replacement;
  });
}

/**
 * Parses and validates a configuration document: YAML, then `${ENV}` substitution, then the
 * `PORT` override, then the schema. Throws one ConfigError listing every problem found; the
 * result is deep-frozen, since configuration is read-only after start.
 */
export function parseConfig(yamlText: string, env: Env): Config {
  const document = parseYaml(yamlText);
  const substituted = substituteEnv(document, env);
  const issues = [...substituted.issues];
  const data = substituted.value;
  applyPortOverride(data, env, issues);

  return validate(data, issues);
}

/**
 * Validates a configuration built in code (demo mode, tests) exactly like a file's: defaults,
 * ConfigError on any problem, deep-frozen result.
 */
export function validateConfig(data: unknown): Config {
  return validate(data, []);
}

function validate(data: unknown, earlierIssues: readonly ConfigIssue[]): Config {
  const issues = [...earlierIssues];
  const result = configSchema.safeParse(data);
  if (!result.success) {
    // A field whose variable is unset is already reported; its emptiness is no second problem.
    const reported = earlierIssues.map((issue) => issue.path);
    for (const issue of issuesFromZod(result.error.issues, data)) {
      if (!reported.some((path) => isWithinPath(issue.path, path))) issues.push(issue);
    }
  }
  if (issues.length > 0 || !result.success) throw new ConfigError(issues);
  return deepFreeze(result.data);
}

/**
 * Reads a configuration file and parses it with `parseConfig`. Only a regular file is read: a
 * FIFO, a device or a directory is refused at once instead of blocking or reading forever.
 */
export async function loadConfigFile(path: string, env: Env): Promise<Config> {
  return parseConfig(await readRegularFile(path), env);
}

async function readRegularFile(path: string): Promise<string> {
  const cannot = (why: string) =>
    new ConfigError([{ path: filePath, message: `cannot read ${path} (${why})` }]);
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    throw cannot((error as NodeJS.ErrnoException).code ?? 'error');
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) {
      throw new ConfigError([
        { path: filePath, message: `${path} is ${kindOfFile(stat)}, not a regular file` },
      ]);
    }
    return await handle.readFile('utf8');
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw cannot((error as NodeJS.ErrnoException).code ?? 'error');
  } finally {
    await handle.close();
  }
}

function kindOfFile(stat: Stats): string {
  if (stat.isDirectory()) return 'a directory';
  if (stat.isFIFO()) return 'a FIFO (named pipe)';
  if (stat.isSocket()) return 'a socket';
  if (stat.isCharacterDevice() || stat.isBlockDevice()) return 'a device';
  return 'a special file';
}

/**
 * Finds the configuration file: `--config`, then `$NUNQ_CONFIG`, then `<cwd>/nunq-connect.yaml`
 * if it exists. `undefined` means no configuration: only `serve` may then run demo mode. An
 * empty `--config` or `$NUNQ_CONFIG` is a mistake, never "no configuration".
 */
export function resolveConfigPath(opts: {
  flag?: string | undefined;
  env: Env;
  cwd: string;
  exists?: (path: string) => boolean;
}): string | undefined {
  if (opts.flag !== undefined) {
    if (opts.flag.trim() === '') throw emptySetting('--config is empty');
    return resolve(opts.cwd, opts.flag);
  }
  const fromEnv = opts.env.NUNQ_CONFIG;
  if (fromEnv !== undefined) {
    if (fromEnv.trim() === '') throw emptySetting('$NUNQ_CONFIG is set but empty');
    return resolve(opts.cwd, fromEnv);
  }
  const local = join(opts.cwd, defaultConfigFileName);
  return (opts.exists ?? existsSync)(local) ? local : undefined;
}

function emptySetting(what: string): ConfigError {
  return new ConfigError([{ path: filePath, message: `${what}: name a config file` }]);
}

function parseYaml(text: string): unknown {
  const document = YAML.parseDocument(text, { uniqueKeys: true });
  // yaml's own messages quote the offending source line, which may hold a secret: report
  // only the error kind and the position.
  const issues = document.errors.map((error) => {
    const at = error.linePos?.[0];
    const where = at ? ` at line ${at.line}, column ${at.col}` : '';
    return { path: yamlPath, message: `${describeYamlError(error.code)}${where}` };
  });
  if (issues.length > 0) throw new ConfigError(issues);
  try {
    // An empty file is an empty mapping, so the report names the required sections.
    return document.toJS({ maxAliasCount: 100 }) ?? {};
  } catch {
    throw new ConfigError([
      { path: yamlPath, message: 'cannot be converted: too many or unresolved aliases' },
    ]);
  }
}

const yamlErrorDescriptions: Record<string, string> = {
  BAD_INDENT: 'bad indentation',
  BLOCK_AS_IMPLICIT_KEY: 'a nested mapping cannot be a key',
  BAD_DQ_ESCAPE: 'bad escape in a double-quoted string',
  DUPLICATE_KEY: 'duplicate key',
  MISSING_CHAR: 'missing closing character',
  MULTILINE_IMPLICIT_KEY: 'a key must be on one line',
  MULTIPLE_DOCS: 'more than one document',
  TAB_AS_INDENT: 'tab used for indentation',
  UNEXPECTED_TOKEN: 'unexpected token',
  BAD_ALIAS: 'bad alias',
  TAG_RESOLVE_FAILED: 'unknown tag',
};

function describeYamlError(code: string): string {
  return `syntax error: ${yamlErrorDescriptions[code] ?? code.toLowerCase().replaceAll('_', ' ')}`;
}

const portMessage = 'the PORT environment variable must be an integer from 0 to 65535';

/** `$PORT` as a port number; undefined when unset or empty; a ConfigError when it is not a port. */
export function portFromEnv(env: Env): number | undefined {
  const port = env.PORT;
  if (port === undefined || port === '') return undefined;
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) {
    throw new ConfigError([{ path: 'server.port', message: portMessage }]);
  }
  return Number(port);
}

/** `PORT` (as set by most platforms) overrides `server.port`. */
function applyPortOverride(data: unknown, env: Env, issues: ConfigIssue[]): void {
  let port: number | undefined;
  try {
    port = portFromEnv(env);
  } catch {
    issues.push({ path: 'server.port', message: portMessage });
    return;
  }
  if (port === undefined) return;
  if (!isPlainObject(data)) return;
  const server = data.server ?? {};
  if (!isPlainObject(server)) return;
  data.server = { ...server, port };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Freezes an object graph (plain objects and arrays), so configuration cannot drift at run time. */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
