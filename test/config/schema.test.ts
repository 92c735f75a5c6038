import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { type Config, parseConfig } from '../../src/config/index.js';
import { minimalYaml, newKey, problemsOf } from './fixtures/helpers.js';

/** Parses the minimal config plus `yaml`. */
function parse(yaml: string, env: Record<string, string> = {}): Config {
  return parseConfig(`${minimalYaml()}${yaml}`, env);
}

function problems(yaml: string, env: Record<string, string> = {}): string[] {
  return problemsOf(() => parse(yaml, env));
}

const oidc = 'type: oidc, issuer: "https://id.example", clientId: c';

describe('providers: client authentication', () => {
  it('defaults clientAuthMethod from what is given', () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    const config = parse(`providers:
  - { id: public, ${oidc} }
  - { id: secret, ${oidc}, clientSecret: s }
  - { id: post, ${oidc}, clientSecret: s, clientAuthMethod: client_secret_post }
  - { id: jwt, ${oidc}, privateKey: ${JSON.stringify(pem)}, privateKeyId: k1 }
`);
    expect(config.providers.map((p) => [p.id, p.clientAuthMethod])).toEqual([
      ['public', 'none'],
      ['secret', 'client_secret_basic'],
      ['post', 'client_secret_post'],
      ['jwt', 'private_key_jwt'],
    ]);
  });

  it('requires a clientSecret for the client_secret methods and a privateKey for private_key_jwt', () => {
    expect(
      problems(`providers:
  - { id: a, ${oidc}, clientAuthMethod: client_secret_basic }
  - { id: b, ${oidc}, clientAuthMethod: private_key_jwt }
  - { id: c, ${oidc}, clientAuthMethod: none }
`),
    ).toEqual([
      'providers[0].clientSecret: required when clientAuthMethod is client_secret_basic',
      'providers[1].privateKey: required when clientAuthMethod is private_key_jwt',
    ]);
  });

  it('requires privateKeyId (the certificate thumbprint, sent as x5t) for an Entra private key', () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pem = JSON.stringify(privateKey.export({ format: 'pem', type: 'pkcs8' }).toString());
    const entra = 'type: entra, tenant: organizations, clientId: c';
    expect(
      problems(`providers:
  - { id: a, ${entra}, privateKey: ${pem} }
  - { id: b, ${entra}, privateKey: ${pem}, privateKeyId: kHTAI05JjHbL84kfXwtxWSPbd0E }
  - { id: c, ${entra}, clientSecret: s }
`),
    ).toEqual([
      "providers[0].privateKeyId: required for Entra certificate credentials: the certificate's SHA-1 thumbprint, base64url (sent as x5t)",
    ]);
  });

  it('accepts a private JWK and rejects a public one or an unknown method', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const jwk = JSON.stringify(privateKey.export({ format: 'jwk' }));
    const config = parse(
      `providers:\n  - { id: a, ${oidc}, clientAuthMethod: private_key_jwt, privateKey: ${jwk} }\n`,
    );
    expect(config.providers[0]?.privateKey).toMatchObject({ kty: 'OKP', crv: 'Ed25519' });

    const publicJwk = JSON.stringify(publicKey.export({ format: 'jwk' }));
    expect(
      problems(`providers:
  - { id: a, ${oidc}, clientAuthMethod: private_key_jwt, privateKey: ${publicJwk} }
  - { id: b, ${oidc}, clientAuthMethod: tls_client_auth }
`),
    ).toEqual([
      'providers[0].privateKey.d: required',
      'providers[1].clientAuthMethod: must be one of "client_secret_basic", "client_secret_post", "private_key_jwt", "none"',
    ]);
  });

  it('refuses extra parameters that would override protocol parameters', () => {
    expect(
      problems(`providers:
  - id: a
    type: oidc
    issuer: https://id.example
    clientId: c
    authorizationParams: { prompt: consent, redirect_uri: "https://evil.example" }
    tokenParams: { resource: "https://api.example", grant_type: password }
`),
    ).toEqual([
      'providers[0].authorizationParams.redirect_uri: is set by nunq-connect',
      'providers[0].tokenParams.grant_type: is set by nunq-connect',
    ]);
  });
});

describe('providers: types', () => {
  it('applies Entra defaults and validates the tenant', () => {
    const tenantId = '72f988bf-86f1-41af-91ab-2d7cd011db47';
    const config = parse(`providers:
  - { id: a, type: entra, clientId: c }
  - { id: b, type: entra, clientId: c, tenant: ${tenantId}, authority: "https://login.microsoftonline.us/" }
  - { id: c, type: entra, clientId: c, tenant: contoso.onmicrosoft.com, idleRefreshIntervalSeconds: 86400 }
`);
    expect(config.providers.map((p) => p.type === 'entra' && [p.tenant, p.authority])).toEqual([
      ['organizations', 'https://login.microsoftonline.com'],
      [tenantId, 'https://login.microsoftonline.us'],
      ['contoso.onmicrosoft.com', 'https://login.microsoftonline.com'],
    ]);
    expect(config.providers[2]?.idleRefreshIntervalSeconds).toBe(86_400);
    expect(problems('providers:\n  - { id: a, type: entra, clientId: c, tenant: "not a tenant" }\n')).toEqual(
      ['providers[0].tenant: must be common, organizations, consumers, a tenant id (GUID) or a domain name'],
    );
  });

  it('requires the fields of each type and rejects those of another', () => {
    expect(
      problems(`providers:
  - { id: a, type: oauth2, clientId: c, tokenEndpoint: "https://t.example/token" }
  - { id: b, type: oidc, clientId: c, issuer: "https://id.example", tenant: common }
  - { id: c, clientId: c }
  - { id: d, type: oauth2, clientId: c, authorizationEndpoint: "https://a.example/#x", tokenEndpoint: "https://t.example/?x=1", scopeSeparator: ";" }
`),
    ).toEqual([
      'providers[0].authorizationEndpoint: required',
      'providers[1].tenant: unknown field "tenant"',
      'providers[2].type: required (one of "entra", "oidc", "oauth2")',
      'providers[3].authorizationEndpoint: must not have a fragment (#...)',
      'providers[3].scopeSeparator: must be one of " ", ","',
    ]);
  });

  it('rejects duplicate provider ids and bad slugs', () => {
    expect(
      problems(`providers:
  - { id: acme, ${oidc} }
  - { id: Acme!, ${oidc} }
  - { id: acme, ${oidc} }
`),
    ).toEqual([
      'providers[1].id: must be a slug: 1-64 characters of a-z, 0-9, _ and -, starting with a letter or digit',
      'providers[2].id: duplicate provider id (also providers[0])',
    ]);
  });
});

describe('integrations and MCP servers', () => {
  it('share one id namespace and must name a configured provider', () => {
    expect(
      problems(`providers:
  - { id: idp, ${oidc} }
integrations:
  - { id: crm, name: CRM, provider: idp, scopes: [read] }
  - { id: crm, name: CRM again, provider: idp }
  - { id: erp, name: ERP, provider: missing }
mcpServers:
  - { id: erp, name: ERP tools, url: "https://mcp.example/mcp" }
`),
    ).toEqual([
      'integrations[1].id: duplicate integration id (also integrations[0])',
      'integrations[2].provider: must be the id of a configured provider (configured: idp)',
      'mcpServers[0].id: duplicate integration id (also integrations[2])',
    ]);
  });

  it('validates scopes, api.baseUrl and MCP-only rules', () => {
    expect(
      problems(`providers:
  - { id: idp, ${oidc} }
integrations:
  - { id: crm, name: CRM, provider: idp, scopes: ["read write"], api: { baseUrl: "https://api.example?x=1" } }
mcpServers:
  - { id: tools, name: Tools, url: "https://mcp.example/mcp", clientSecret: s, api: { baseUrl: "https://x.example" } }
`),
    ).toEqual([
      'integrations[0].scopes[0]: must be one scope token (no spaces, quotes or backslashes)',
      'integrations[0].api.baseUrl: must not have a query (?...)',
      'mcpServers[0].api: not allowed on an MCP server: the gateway talks to its url',
      'mcpServers[0].clientSecret: requires clientId',
    ]);
  });

  it('applies defaults and strips the trailing slash of api.baseUrl', () => {
    const config = parse(`providers:
  - { id: idp, ${oidc} }
integrations:
  - { id: crm, name: CRM, provider: idp, api: { baseUrl: "https://api.example/v2/" } }
mcpServers:
  - { id: tools, name: Tools, url: "https://mcp.example/mcp", enabled: false, clientId: nunq, scopes: [tools] }
`);
    expect(config.integrations[0]).toEqual({
      id: 'crm',
      name: 'CRM',
      provider: 'idp',
      scopes: [],
      enabled: true,
      api: { baseUrl: 'https://api.example/v2' },
    });
    expect(config.mcpServers[0]).toMatchObject({ enabled: false, clientId: 'nunq', scopes: ['tools'] });
  });

  it('checks the MCP client, PKCE and resource settings, ids without "__", and mcp.clientMetadataUrl', () => {
    expect(
      problems(`mcpServers:
  - { id: a__b, name: A, url: "https://a.example/mcp" }
  - { id: b, name: B, url: "https://b.example/mcp", clientAuthMethod: none }
  - { id: c, name: C, url: "https://c.example/mcp", clientId: x, clientAuthMethod: client_secret_post }
  - { id: d, name: D, url: "https://d.example/mcp", clientId: x, clientAuthMethod: private_key_jwt }
  - { id: e, name: E, url: "https://e.example/mcp", pkce: plain, resource: never }
mcp:
  clientMetadataUrl: "http://nunq.example/oauth/client-metadata.json"
`),
    ).toEqual([
      'mcpServers[0].id: must not contain "__" (it separates ids from tool names on /mcp)',
      'mcpServers[1].clientAuthMethod: requires clientId',
      'mcpServers[2].clientSecret: required when clientAuthMethod is client_secret_post',
      expect.stringMatching(/^mcpServers\[3\]\.clientAuthMethod: /),
      expect.stringMatching(/^mcpServers\[4\]\.pkce: /),
      expect.stringMatching(/^mcpServers\[4\]\.resource: /),
      'mcp.clientMetadataUrl: must be an https URL (it is the client_id)',
    ]);
    const config = parse(`mcpServers:
  - { id: f, name: F, url: "https://f.example/mcp", clientId: x, clientSecret: s, clientAuthMethod: client_secret_post, pkce: assume-s256, resource: omit }
mcp:
  clientMetadataUrl: "https://nunq.example/oauth/client-metadata.json"
`);
    expect(config.mcpServers[0]).toMatchObject({
      clientAuthMethod: 'client_secret_post',
      pkce: 'assume-s256',
      resource: 'omit',
    });
    expect(config.mcp.clientMetadataUrl).toBe('https://nunq.example/oauth/client-metadata.json');
  });
});

describe('encryption', () => {
  it('rejects duplicate and malformed key ids, empty key lists and keys of the wrong length', () => {
    const short = Buffer.alloc(31).toString('base64');
    const long = Buffer.alloc(33).toString('base64');
    const yaml = `encryption:
  activeKey: a
  keys:
    - { id: a, key: "${newKey()}" }
    - { id: a, key: "${short}" }
    - { id: "b c", key: "${long}" }
auth: { mode: dev }
`;
    expect(problemsOf(() => parseConfig(yaml, {}))).toEqual([
      'encryption.keys[1].key: must be base64 of exactly 32 bytes',
      'encryption.keys[2].id: must be 1-32 characters of A-Z, a-z, 0-9, _ and -',
      'encryption.keys[2].key: must be base64 of exactly 32 bytes',
      'encryption.keys[1].id: duplicate key id (also encryption.keys[0])',
    ]);
    expect(
      problemsOf(() => parseConfig('encryption: { activeKey: a, keys: [] }\nauth: { mode: dev }\n', {})),
    ).toEqual([
      'encryption.keys: must not be empty',
      'encryption.activeKey: must be the id of one of encryption.keys',
    ]);
  });
});

describe('auth', () => {
  it('accepts a shared secret or a JWKS URL, with optional issuer and audience', () => {
    const secret = 's'.repeat(32);
    const withSecret = parseConfig(
      `${minimalYaml().replace('mode: dev', `jwt: { secret: ${secret}, issuer: platform, audience: nunq }`)}`,
      {},
    );
    expect(withSecret.auth).toMatchObject({
      mode: 'jwt',
      jwt: { secret, issuer: 'platform', audience: 'nunq' },
    });
    const withJwks = parseConfig(
      `${minimalYaml().replace('mode: dev', 'jwt: { jwksUrl: "https://platform.example/.well-known/jwks.json" }')}`,
      {},
    );
    expect(withJwks.auth.jwt).toEqual({ jwksUrl: 'https://platform.example/.well-known/jwks.json' });
  });

  it('requires jwt settings in jwt mode and exactly one key source', () => {
    const auth = (body: string) => minimalYaml().replace('auth:\n  mode: dev\n', `auth: ${body}\n`);
    expect(problemsOf(() => parseConfig(auth('{ mode: jwt }'), {}))).toEqual([
      'auth.jwt: required when auth.mode is jwt',
    ]);
    expect(problemsOf(() => parseConfig(auth('{ jwt: { issuer: x } }'), {}))).toEqual([
      'auth.jwt: needs either secret (HS256) or jwksUrl',
    ]);
    expect(
      problemsOf(() =>
        parseConfig(auth(`{ jwt: { secret: ${'s'.repeat(32)}, jwksUrl: "https://j.example" } }`), {}),
      ),
    ).toEqual(['auth.jwt.jwksUrl: cannot be combined with secret']);
    expect(
      problemsOf(() => parseConfig(auth('{ jwt: { secret: short }, admins: [""], mode: sso }'), {})),
    ).toEqual([
      'auth.mode: must be one of "jwt", "dev"',
      'auth.jwt.secret: must be at least 32 characters (HS256)',
      'auth.admins[0]: must not be empty',
    ]);
  });
});

describe('server, database, outbound, webhooks', () => {
  it('validates the scalar sections', () => {
    expect(
      problems(`server: { port: 70000, publicUrl: "https://x.example/#top", trustProxy: maybe }
database: { url: "mysql://db/nunq" }
outbound: { allow: ["127.0.0.1/32", "::1/128", "10.0.0.0/33", "0x7f.1/8", "localhost"], timeoutMs: 0 }
webhooks:
  - { url: "https://hooks.example/nunq", secret: "0123456789abcdef", events: [connection.created, connection.exploded] }
  - { url: "https://hooks.example/short", secret: short }
  - { url: "https://hooks.example/nunq", secret: "0123456789abcdef" }
`),
    ).toEqual([
      'server.port: must be at most 65535',
      'server.publicUrl: must not have a fragment (#...)',
      'server.trustProxy: must be true or false, not a string',
      'database.url: must start with sqlite:, postgres:// or postgresql://',
      'outbound.allow[2]: must be a CIDR range such as 127.0.0.1/32 or ::1/128',
      'outbound.allow[3]: must be a CIDR range such as 127.0.0.1/32 or ::1/128',
      'outbound.allow[4]: must be a CIDR range such as 127.0.0.1/32 or ::1/128',
      'outbound.timeoutMs: must be at least 1',
      'webhooks[0].events[1]: must be one of "connection.created", "connection.reconnected", "connection.needs_reauth", "connection.deleted"',
      'webhooks[1].secret: must be at least 16 characters',
      'webhooks[2].url: duplicate url (also webhooks[0])',
    ]);
  });

  it('bounds the request limits and keeps the whole-request time at least the header time', () => {
    expect(
      parse('server: { headersTimeoutMs: 5000, requestTimeoutMs: "90000", bodyLimitBytes: 4096 }\n').server,
    ).toMatchObject({
      headersTimeoutMs: 5000,
      requestTimeoutMs: 90_000,
      keepAliveTimeoutMs: 72_000,
      bodyLimitBytes: 4096,
    });
    expect(problems('server: { headersTimeoutMs: 0, keepAliveTimeoutMs: -1, bodyLimitBytes: 10 }\n')).toEqual(
      [
        'server.headersTimeoutMs: must be at least 100',
        'server.keepAliveTimeoutMs: must be at least 100',
        'server.bodyLimitBytes: must be at least 1024',
      ],
    );
    expect(problems('server: { headersTimeoutMs: 20000, requestTimeoutMs: 10000 }\n')).toEqual([
      'server.requestTimeoutMs: must be at least server.headersTimeoutMs',
    ]);
  });

  it('accepts PostgreSQL URLs and CIDR lists', () => {
    const config = parse(`database: { url: "postgresql://nunq@db.internal:5432/nunq" }
outbound: { allow: ["127.0.0.1/32", "fd00::/8"] }
`);
    expect(config.database.url).toBe('postgresql://nunq@db.internal:5432/nunq');
    expect(config.outbound.allow).toEqual(['127.0.0.1/32', 'fd00::/8']);
  });
});

describe('retention', () => {
  it('is optional: without it every period keeps its default', () => {
    expect(parse('').retention).toBeUndefined();
    expect(parse('retention: { eventsHours: "48", revocationsDays: 90 }').retention).toEqual({
      eventsHours: 48,
      revocationsDays: 90,
    });
  });

  it('takes whole hours and days of at least one, and no other field', () => {
    expect(
      problems('retention: { eventsHours: 0, deliveriesDays: 1.5, notificationsDays: -1, auditDays: 1 }'),
    ).toEqual([
      'retention.eventsHours: must be at least 1',
      'retention.deliveriesDays: must be an integer, not a number',
      'retention.notificationsDays: must be at least 1',
      'retention.auditDays: unknown field "auditDays"',
    ]);
  });
});
