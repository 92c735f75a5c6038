// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these strings hold ${ENV} references, not templates
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig, validateConfig } from '../../src/config/index.js';
import { configErrorOf, exampleEnv, fixture, minimalYaml, newKey, problemsOf } from './fixtures/helpers.js';

describe('parseConfig: the contract §3 example', () => {
  it('parses, with every ${ENV} substituted and defaults applied', () => {
    const env = exampleEnv();
    const config = parseConfig(fixture('contract-example.yaml'), env);

    expect(config.server).toEqual({
      port: 3000,
      host: '127.0.0.1',
      publicUrl: 'http://localhost:3000',
      trustProxy: false,
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 60_000,
      keepAliveTimeoutMs: 72_000,
      bodyLimitBytes: 1024 * 1024,
      embedOrigins: [],
    });
    expect(config.database.url).toBe('sqlite:./.nunq/nunq.db');
    expect(config.encryption).toEqual({
      activeKey: 'k2',
      keys: [
        { id: 'k2', key: env.NUNQ_KEY_K2 },
        { id: 'k1', key: env.NUNQ_KEY_K1 },
      ],
    });
    expect(config.auth).toEqual({
      mode: 'jwt',
      jwt: { secret: env.NUNQ_JWT_SECRET },
      admins: ['alice'],
      sessionTtlSeconds: 43_200,
      groupsClaim: 'groups',
    });
    expect(config.outbound).toEqual({ allow: [], timeoutMs: 10_000 });
    expect(config.webhooks).toEqual([
      { url: 'https://platform.example/hooks/nunq', secret: env.NUNQ_WEBHOOK_SECRET },
    ]);

    const [entra, acme, legacy] = config.providers;
    expect(entra).toMatchObject({
      id: 'entra',
      type: 'entra',
      tenant: 'organizations',
      authority: 'https://login.microsoftonline.com',
      clientId: env.ENTRA_CLIENT_ID,
      clientSecret: env.ENTRA_CLIENT_SECRET,
      clientAuthMethod: 'client_secret_basic',
    });
    expect(acme).toMatchObject({ id: 'acme', type: 'oidc', issuer: 'https://id.acme.example' });
    expect(legacy).toMatchObject({
      id: 'legacy',
      type: 'oauth2',
      tokenEndpoint: 'https://legacy.example/oauth/token',
      revocationEndpoint: 'https://legacy.example/oauth/revoke',
      scopeSeparator: ' ',
      clientSecret: env.LEGACY_SECRET,
    });

    expect(config.integrations.map((i) => [i.id, i.provider, i.enabled, i.api?.baseUrl])).toEqual([
      ['sharepoint', 'entra', true, 'https://graph.microsoft.com'],
      ['business-central', 'entra', true, 'https://api.businesscentral.dynamics.com'],
    ]);
    expect(config.integrations[0]?.scopes).toEqual([
      'offline_access',
      'https://graph.microsoft.com/Sites.Read.All',
    ]);
    expect(config.mcpServers).toEqual([
      { id: 'tracker', name: 'Issue tracker', url: 'https://mcp.tracker.example/mcp', enabled: true },
    ]);
  });

  it('returns a deep-frozen object: mutation throws', () => {
    const config = parseConfig(fixture('contract-example.yaml'), exampleEnv());
    expect(Object.isFrozen(config)).toBe(true);
    expect(() => {
      (config.server as { port: number }).port = 1;
    }).toThrow(TypeError);
    expect(() => {
      (config.providers as unknown[]).push({});
    }).toThrow(TypeError);
    expect(() => {
      (config.encryption.keys[0] as { key: string }).key = 'changed';
    }).toThrow(TypeError);
    const scopes = config.integrations[0]!.scopes as string[];
    expect(scopes).toHaveLength(2);
    expect(() => scopes.push('more')).toThrow(TypeError);
  });

  it('fills every default into a minimal config', () => {
    const config = parseConfig(minimalYaml(), {});
    expect(config.server).toEqual({
      port: 3000,
      host: '127.0.0.1',
      publicUrl: 'http://localhost:3000',
      trustProxy: false,
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 60_000,
      keepAliveTimeoutMs: 72_000,
      bodyLimitBytes: 1024 * 1024,
      embedOrigins: [],
    });
    expect(config.database).toEqual({ url: 'sqlite:./.nunq/nunq.db' });
    expect(config.auth).toEqual({
      mode: 'dev',
      admins: [],
      sessionTtlSeconds: 43_200,
      groupsClaim: 'groups',
    });
    expect(config.outbound).toEqual({ allow: [], timeoutMs: 10_000 });
    expect([config.webhooks, config.providers, config.integrations, config.mcpServers]).toEqual([
      [],
      [],
      [],
      [],
    ]);
  });

  it('reports an empty file as missing sections, not as a crash', () => {
    expect(problemsOf(() => parseConfig('', {}))).toEqual([
      'encryption: required',
      'auth.jwt: required when auth.mode is jwt',
    ]);
  });
});

describe('parseConfig: a broken config', () => {
  it('reports every problem, each at its exact path, in one ConfigError', () => {
    const error = configErrorOf(() =>
      parseConfig(fixture('broken.yaml'), { NUNQ_JWT_SECRET: 'j'.repeat(40), ENTRA_SECRET: 'entra-secret' }),
    );
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.code).toBe('config_invalid');
    expect(error.issues).toEqual(
      expect.arrayContaining([
        { path: 'telemetry', message: 'unknown field "telemetry"' },
        { path: 'server.prot', message: 'unknown field "prot"' },
        { path: 'server.publicUrl', message: 'must be an absolute http(s) URL' },
        { path: 'encryption.keys[0].key', message: 'must be base64 of exactly 32 bytes' },
        { path: 'encryption.keys[1].key', message: 'environment variable NUNQ_KEY_K2 is not set' },
        { path: 'encryption.keys[2].key', message: 'must be a string, not an integer' },
        { path: 'encryption.activeKey', message: 'must be the id of one of encryption.keys' },
        { path: 'outbound.allow[0]', message: 'must be a CIDR range such as 127.0.0.1/32 or ::1/128' },
        { path: 'outbound.timeoutMs', message: 'must be a number, not a string' },
        { path: 'providers[1].tokenEndpoint', message: 'must be an absolute http(s) URL' },
        { path: 'providers[1].tokenParams', message: 'must be a mapping, not a list' },
        {
          path: 'providers[1].clientSecret',
          message: 'required when clientAuthMethod is client_secret_post',
        },
        {
          path: 'integrations[1].provider',
          message: 'must be the id of a configured provider (configured: entra, legacy)',
        },
        { path: 'mcpServers[0].id', message: 'duplicate integration id (also integrations[0])' },
      ]),
    );
    // Nothing else: the unset variable is not reported a second time as a bad key.
    expect(error.issues).toHaveLength(14);
    expect(error.format().split('\n')).toContain(
      'providers[1].clientSecret: required when clientAuthMethod is client_secret_post',
    );
  });

  it('reports schema problems even when environment variables are missing', () => {
    const yaml = `${minimalYaml()}providers:\n  - { id: p, type: oidc, issuer: "\${ISSUER}", clientId: c, clientAuthMethod: client_secret_basic }\n`;
    expect(problemsOf(() => parseConfig(yaml, {}))).toEqual([
      'providers[0].issuer: environment variable ISSUER is not set',
      'providers[0].clientSecret: required when clientAuthMethod is client_secret_basic',
    ]);
  });
});

describe('parseConfig: error messages never contain the offending value', () => {
  const secret = 'S3CR3T-zx81-do-not-print';

  it('keeps a secret out of every message, whatever field it landed in', () => {
    const yaml = [
      'server:',
      `  sessionSecret: "${secret}"`, // unknown key holding a secret
      `  publicUrl: "https://nunq.example/?token=${secret}"`, // query not allowed
      'database:',
      `  url: "mysql://root:${secret}@db/nunq"`, // wrong scheme
      'encryption:',
      '  activeKey: k1',
      '  keys:',
      `    - { id: k1, key: "${secret}" }`, // not 32 bytes
      '    - { id: k2, key: "${NUNQ_KEY_K2}" }', // env value of the wrong length
      'auth:',
      `  mode: "${secret}"`, // not an enum value
      `  jwt: { secret: "${secret}" }`, // too short for HS256
      'webhooks:',
      `  - { url: "https://hook:${secret}@hooks.example/", secret: "${secret.slice(0, 10)}" }`,
      'providers:',
      `  - { id: p1, type: "${secret}", clientId: c }`, // bad discriminator
      '  - { id: p2, type: oidc, issuer: "https://id.example", clientId: c, clientSecret: 98765432123456789 }',
      `  - { id: p3, type: oidc, issuer: "https://id.example", clientId: c, privateKey: "${secret}" }`,
      `  - { id: p4, type: entra, clientId: c, tenant: "${secret}" }`,
      `  - { id: p5, type: oauth2, clientId: c, authorizationEndpoint: "${secret}", tokenEndpoint: "https://t.example/" }`,
    ].join('\n');
    const error = configErrorOf(() => parseConfig(yaml, { NUNQ_KEY_K2: `${secret}-from-env` }));

    const paths = error.issues.map((issue) => issue.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        'server.sessionSecret',
        'server.publicUrl',
        'database.url',
        'encryption.keys[0].key',
        'encryption.keys[1].key',
        'auth.mode',
        'auth.jwt.secret',
        'webhooks[0].url',
        'webhooks[0].secret',
        'providers[0].type',
        'providers[1].clientSecret',
        'providers[2].privateKey',
        'providers[3].tenant',
        'providers[4].authorizationEndpoint',
      ]),
    );
    for (const text of [error.format(), error.message, JSON.stringify(error.issues), String(error.stack)]) {
      expect(text).not.toContain(secret);
      expect(text).not.toContain('S3CR3T');
      expect(text).not.toContain('98765432123456789');
    }
    expect(error.format()).toContain('auth.mode: must be one of "jwt", "dev"');
    expect(error.format()).toContain('providers[1].clientSecret: must be a string, not an integer');
  });

  it('keeps the source line out of YAML syntax errors', () => {
    const yaml = `${minimalYaml()}webhooks:\n  - { url: https://hooks.example, secret: "${secret}\n`;
    const error = configErrorOf(() => parseConfig(yaml, {}));
    expect(error.issues.length).toBeGreaterThan(0);
    expect(error.issues.every((issue) => issue.path === '(yaml)')).toBe(true);
    expect(error.format()).not.toContain('S3CR3T');
  });
});

describe('parseConfig: ${ENV} substitution', () => {
  it('replaces references in nested strings and keeps $${ as a literal ${', () => {
    const yaml = `${minimalYaml()}providers:
  - id: p
    type: oidc
    issuer: "https://\${IDP_HOST}/realms/main"
    clientId: "\${CLIENT_ID}"
    authorizationParams: { login_hint: "pa$\${ss}" }
`;
    const config = parseConfig(yaml, { IDP_HOST: 'id.example', CLIENT_ID: 'nunq', ss: 'never-used' });
    const provider = config.providers[0];
    expect(provider?.type === 'oidc' && provider.issuer).toBe('https://id.example/realms/main');
    expect(provider?.clientId).toBe('nunq');
    expect(provider?.authorizationParams).toEqual({ login_hint: 'pa${ss}' });
  });

  it('converts substituted numbers and booleans where the field needs them', () => {
    const yaml = `server: { port: "\${APP_PORT}", trustProxy: "\${BEHIND_PROXY}" }\n${minimalYaml()}`;
    const config = parseConfig(yaml, { APP_PORT: '8443', BEHIND_PROXY: 'true' });
    expect(config.server.port).toBe(8443);
    expect(config.server.trustProxy).toBe(true);
  });
});

describe('parseConfig: PORT', () => {
  it('overrides server.port, and the default publicUrl follows it', () => {
    const yaml = `server: { port: 3000 }\n${minimalYaml()}`;
    const config = parseConfig(yaml, { PORT: '8080' });
    expect(config.server.port).toBe(8080);
    expect(config.server.publicUrl).toBe('http://localhost:8080');
  });

  it('does not touch an explicit publicUrl, and strips its trailing slash', () => {
    const yaml = `server: { publicUrl: "https://connect.example/nunq/" }\n${minimalYaml()}`;
    const config = parseConfig(yaml, { PORT: '9000' });
    expect(config.server).toMatchObject({ port: 9000, publicUrl: 'https://connect.example/nunq' });
  });

  it('is validated', () => {
    for (const port of ['http', '70000', '-1', '80.5']) {
      expect(problemsOf(() => parseConfig(minimalYaml(), { PORT: port }))).toEqual([
        'server.port: the PORT environment variable must be an integer from 0 to 65535',
      ]);
    }
  });

  it('leaves server.port alone when unset or empty', () => {
    expect(parseConfig(`server: { port: 4000 }\n${minimalYaml()}`, { PORT: '' }).server.port).toBe(4000);
    expect(parseConfig(`server: { port: 4000 }\n${minimalYaml()}`, {}).server.port).toBe(4000);
  });
});

describe('parseConfig: YAML syntax errors', () => {
  it('reports a (yaml) issue with line and column', () => {
    const yaml = 'server:\n  port: 3000\n   host: x\noutbound: [1\n';
    const problems = problemsOf(() => parseConfig(yaml, {}));
    expect(problems.length).toBeGreaterThan(0);
    expect(problems[0]).toMatch(/^\(yaml\): syntax error: .+ at line \d+, column \d+$/);
  });

  it('rejects duplicate keys instead of keeping the last one', () => {
    const yaml = `${minimalYaml()}server: { port: 1 }\nserver: { port: 2 }\n`;
    expect(problemsOf(() => parseConfig(yaml, {}))).toEqual([
      '(yaml): syntax error: duplicate key at line 8, column 1',
    ]);
  });

  it('rejects a document that is not a mapping', () => {
    expect(problemsOf(() => parseConfig('- a\n- b\n', {}))).toEqual([
      '(root): must be a mapping, not a list',
    ]);
  });

  it('treats a __proto__ key as an unknown field, not as a prototype', () => {
    const yaml = `${minimalYaml()}__proto__: { polluted: true }\n`;
    expect(problemsOf(() => parseConfig(yaml, {}))).toEqual(['__proto__: unknown field "__proto__"']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('parseConfig: keys', () => {
  it('accepts base64 and base64url keys, padded or not', () => {
    const key = newKey('base64url').replace(/=+$/, '');
    const yaml = `encryption:\n  activeKey: a\n  keys: [{ id: a, key: "${key}" }, { id: b, key: "${newKey()}" }]\nauth: { mode: dev }\n`;
    expect(parseConfig(yaml, {}).encryption.keys.map((k) => k.id)).toEqual(['a', 'b']);
  });
});

describe('validateConfig', () => {
  it('validates an object built in code like a file: defaults, frozen result, ConfigError', () => {
    const encryption = { activeKey: 'k1', keys: [{ id: 'k1', key: newKey() }] };
    const config = validateConfig({ encryption, auth: { mode: 'dev' }, server: { port: 4100 } });
    expect(config.server.publicUrl).toBe('http://localhost:4100');
    expect(Object.isFrozen(config.encryption.keys)).toBe(true);
    expect(problemsOf(() => validateConfig({ encryption, auth: { mode: 'dev' }, extra: 1 }))).toEqual([
      'extra: unknown field "extra"',
    ]);
  });
});
