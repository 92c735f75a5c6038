import { randomBytes } from 'node:crypto';
import type * as oauth from 'oauth4webapi';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { generateKey, Keyring, Sealer } from '../../src/crypto/index.js';
import { ProviderError } from '../../src/oauth/errors.js';
import {
  chooseAuthMethod,
  clientMetadataDocument,
  isRegistrationRejected,
  resolveClientIdentity,
} from '../../src/oauth/mcp/client-identity.js';
import { McpDiscoveryError } from '../../src/oauth/mcp/errors.js';
import { createOutboundFetch, type OutboundPolicy } from '../../src/oauth/outbound.js';
import type { Store } from '../../src/store/database.js';
import { McpRegistrations } from '../../src/store/repos/mcp-registrations.js';
import { createTestStore, databaseKinds, type TestDatabase } from '../support/databases.js';
import { asMetadata, type Site, startSite } from './mcp-servers.js';

const policy: OutboundPolicy = { allow: ['127.0.0.1/32'], timeoutMs: 2_000 };
const fetch = createOutboundFetch(policy);
const keyring = Keyring.fromConfig({ activeKeyId: 'k1', keys: [{ id: 'k1', key: generateKey() }] });
const redirectUri = 'https://nunq.example/oauth/callback';
let now = 1_800_000_000_000;
const clock = { now: () => now };

describe.each(databaseKinds)('the client at an MCP authorization server, on %s', (kind) => {
  let store: Store;
  let database: TestDatabase;
  let registrations: McpRegistrations;
  let as: Site;
  /** Secrets the registration endpoint handed out, in order. */
  let issued: Array<{ client_id: string; client_secret: string; registration_access_token: string }>;
  /** What /register says of the secret's expiry; undefined: the field is left out. */
  let secretExpiresAt: number | undefined = 0;

  beforeAll(async () => {
    ({ store, database } = await createTestStore(kind));
    registrations = new McpRegistrations(store.db, new Sealer(keyring));
  });
  afterAll(async () => {
    await store.close();
    await database.drop();
  });
  afterEach(async () => {
    await as?.close();
    await store.db.deleteFrom('mcp_registrations').execute();
  });

  /** An authorization server whose /register hands out a new client each time (after `delayMs`). */
  async function startAs(
    extra: Record<string, unknown> = {},
    delayMs = 0,
  ): Promise<oauth.AuthorizationServer> {
    as = await startSite();
    issued = [];
    as.route('/register', (req, res) => {
      const asked = JSON.parse(req.body) as Record<string, unknown>;
      const client = {
        client_id: `client-${randomBytes(4).toString('hex')}`,
        client_secret: `secret-${randomBytes(12).toString('hex')}`,
        registration_access_token: `rat-${randomBytes(12).toString('hex')}`,
      };
      issued.push(client);
      setTimeout(() => {
        res.writeHead(201, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ ...asked, ...client, client_secret_expires_at: secretExpiresAt }));
      }, delayMs);
    });
    return asMetadata(as.url, extra) as oauth.AuthorizationServer;
  }

  const base = (metadata: oauth.AuthorizationServer) => ({
    as: metadata,
    publicUrl: 'https://nunq.example',
    redirectUri,
    registrations,
    fetch,
    policy,
    clock,
  });
  const registerRequests = () => as.received.filter((r) => r.url === '/register');

  it('uses the configured client first, whatever the server offers', async () => {
    const metadata = await startAs({ client_id_metadata_document_supported: true });
    const identity = await resolveClientIdentity({
      ...base(metadata),
      configured: { clientId: 'admin-registered', clientAuthMethod: 'client_secret_post' },
      credentials: { clientSecret: 'configured-secret' },
    });
    expect(identity.method).toBe('configured');
    expect(identity.client.client_id).toBe('admin-registered');
    expect(identity.client.token_endpoint_auth_method).toBe('client_secret_post');
    expect(registerRequests()).toEqual([]);
  });

  it('uses a Client ID Metadata Document when the server supports them and publicUrl is https', async () => {
    const metadata = await startAs({ client_id_metadata_document_supported: true });
    const identity = await resolveClientIdentity(base(metadata));
    expect(identity.method).toBe('cimd');
    expect(identity.client.client_id).toBe('https://nunq.example/oauth/client-metadata.json');
    expect(registerRequests()).toEqual([]);
  });

  it('uses an explicit clientMetadataUrl even when publicUrl is plain http', async () => {
    const metadata = await startAs({ client_id_metadata_document_supported: true });
    const identity = await resolveClientIdentity({
      ...base(metadata),
      publicUrl: 'http://127.0.0.1:8080',
      clientMetadataUrl: 'https://docs.example/nunq.json',
    });
    expect(identity).toMatchObject({
      method: 'cimd',
      client: { client_id: 'https://docs.example/nunq.json' },
    });
  });

  it('registers dynamically when CIMD cannot be used (plain http publicUrl), sealed at rest', async () => {
    const metadata = await startAs({ client_id_metadata_document_supported: true });
    const identity = await resolveClientIdentity({ ...base(metadata), publicUrl: 'http://127.0.0.1:8080' });
    expect(identity.method).toBe('dynamic');
    expect(identity.client.client_id).toBe(issued[0]!.client_id);
    expect(identity.client.token_endpoint_auth_method).toBe('client_secret_basic');
    const asked = JSON.parse(registerRequests()[0]!.body) as Record<string, unknown>;
    expect(asked).toEqual({
      client_name: 'nunq-connect',
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      application_type: 'web',
    });
    const rows = await store.db.selectFrom('mcp_registrations').selectAll().execute();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      issuer: as.url,
      redirect_uri: redirectUri,
      client_id: issued[0]!.client_id,
    });
    const raw = JSON.stringify(rows);
    expect(raw).toContain('v1.k1.');
    expect(raw).not.toContain(issued[0]!.client_secret);
    expect(raw).not.toContain(issued[0]!.registration_access_token);
    // The next use, by any user or instance, takes the stored registration.
    const again = await resolveClientIdentity({ ...base(metadata), publicUrl: 'http://127.0.0.1:8080' });
    expect(again.client.client_id).toBe(issued[0]!.client_id);
    expect(registerRequests()).toHaveLength(1);
  });

  it('keeps the first registration stored when two instances register at once', async () => {
    const metadata = await startAs({}, 100);
    const other = new McpRegistrations(store.db, new Sealer(keyring));
    const [a, b] = await Promise.all([
      resolveClientIdentity(base(metadata)),
      resolveClientIdentity({ ...base(metadata), registrations: other }),
    ]);
    expect(registerRequests()).toHaveLength(2);
    expect(a.client.client_id).toBe(b.client.client_id);
    expect(await store.db.selectFrom('mcp_registrations').selectAll().execute()).toHaveLength(1);
  });

  it('drops a rejected registration once and registers anew; a stale drop leaves the new one alone', async () => {
    const metadata = await startAs();
    const first = await resolveClientIdentity(base(metadata));
    expect(
      isRegistrationRejected(new ProviderError('config_error', 'x', { providerError: 'invalid_client' })),
    ).toBe(true);
    expect(
      isRegistrationRejected(new ProviderError('reauth_required', 'x', { providerError: 'invalid_grant' })),
    ).toBe(false);
    expect(
      await registrations.dropRegistration(as.url, { redirectUri, clientId: first.client.client_id }),
    ).toBe(1);
    const second = await resolveClientIdentity(base(metadata));
    expect(second.client.client_id).not.toBe(first.client.client_id);
    expect(registerRequests()).toHaveLength(2);
    // Another instance still holding the first client gets invalid_client too: its drop is a no-op.
    expect(
      await registrations.dropRegistration(as.url, { redirectUri, clientId: first.client.client_id }),
    ).toBe(0);
    expect((await resolveClientIdentity(base(metadata))).client.client_id).toBe(second.client.client_id);
    expect(registerRequests()).toHaveLength(2);
  });

  it('registers anew when the stored client secret has expired', async () => {
    const metadata = await startAs();
    secretExpiresAt = Math.floor(now / 1000) + 60;
    try {
      const first = await resolveClientIdentity(base(metadata));
      now += 61_000;
      const second = await resolveClientIdentity(base(metadata));
      expect(second.client.client_id).not.toBe(first.client.client_id);
      expect(registerRequests()).toHaveLength(2);
    } finally {
      secretExpiresAt = 0;
    }
  });

  it('accepts a registration whose secret has no client_secret_expires_at (it never expires)', async () => {
    secretExpiresAt = undefined;
    try {
      const identity = await resolveClientIdentity(base(await startAs()));
      expect(identity.method).toBe('dynamic');
      expect(identity.client.client_id).toBe(issued[0]!.client_id);
      // Stored and reused: the next resolution registers nothing.
      await resolveClientIdentity(base(asMetadata(as.url) as oauth.AuthorizationServer));
      expect(registerRequests()).toHaveLength(1);
    } finally {
      secretExpiresAt = 0;
    }
  });

  it('registers with a token endpoint auth method the server lists', async () => {
    const metadata = await startAs({
      token_endpoint_auth_methods_supported: ['private_key_jwt', 'client_secret_post'],
    });
    const identity = await resolveClientIdentity(base(metadata));
    expect(JSON.parse(registerRequests()[0]!.body).token_endpoint_auth_method).toBe('client_secret_post');
    expect(identity.client.token_endpoint_auth_method).toBe('client_secret_post');
  });

  it('tells the admin to register a client when the server offers no way to get one', async () => {
    const metadata = await startAs();
    delete (metadata as { registration_endpoint?: string }).registration_endpoint;
    const error = await resolveClientIdentity(base(metadata)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(McpDiscoveryError);
    expect((error as McpDiscoveryError).problem).toBe('client_required');
    expect((error as Error).message).toContain('configure its clientId');
    expect(as.received).toEqual([]);
  });

  it('reports a refused registration without the response body', async () => {
    const metadata = await startAs();
    as.route('/register', (_req, res) => {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'invalid_redirect_uri', error_description: 'SECRET-DESCRIPTION' }));
    });
    const error = (await resolveClientIdentity(base(metadata)).catch((e: unknown) => e)) as McpDiscoveryError;
    expect(error.problem).toBe('registration_failed');
    expect(error.message).toContain('invalid_redirect_uri');
    expect(JSON.stringify({ ...error, message: error.message, cause: String(error.cause) })).not.toContain(
      'SECRET-DESCRIPTION',
    );
    expect(await store.db.selectFrom('mcp_registrations').selectAll().execute()).toEqual([]);
  });
});

describe('client identity helpers', () => {
  it('chooses basic over post over none, only among the listed methods, basic by default', () => {
    const as = (listed?: string[]) =>
      ({
        issuer: 'https://as.example',
        token_endpoint_auth_methods_supported: listed,
      }) as oauth.AuthorizationServer;
    expect(chooseAuthMethod(as())).toBe('client_secret_basic');
    expect(chooseAuthMethod(as(['none', 'client_secret_post', 'client_secret_basic']))).toBe(
      'client_secret_basic',
    );
    expect(chooseAuthMethod(as(['none', 'client_secret_post']))).toBe('client_secret_post');
    expect(chooseAuthMethod(as(['none']))).toBe('none');
    expect(() => chooseAuthMethod(as(['private_key_jwt', 'tls_client_auth']))).toThrow(McpDiscoveryError);
  });

  it('builds the Client ID Metadata Document whose URL is its client_id', () => {
    expect(
      clientMetadataDocument({
        publicUrl: 'https://nunq.example/',
        redirectUri: 'https://nunq.example/oauth/callback',
      }),
    ).toEqual({
      client_id: 'https://nunq.example/oauth/client-metadata.json',
      client_name: 'nunq-connect',
      client_uri: 'https://nunq.example/',
      redirect_uris: ['https://nunq.example/oauth/callback'],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      application_type: 'web',
    });
    expect(
      clientMetadataDocument({
        publicUrl: 'https://nunq.example',
        clientMetadataUrl: 'https://cdn.example/cimd.json',
        redirectUri: 'https://nunq.example/oauth/callback',
      }).client_id,
    ).toBe('https://cdn.example/cimd.json');
  });
});
