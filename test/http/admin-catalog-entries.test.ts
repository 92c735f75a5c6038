import type * as oauth from 'oauth4webapi';
import { describe, expect, it } from 'vitest';
import { mayAccess } from '../../src/connections/access.js';
import { mergePatch } from '../../src/http/routes/admin-catalog-entries.js';
import { chooseRegistration } from '../../src/oauth/mcp/client-identity.js';

describe('mergePatch (RFC 7396)', () => {
  it.each([
    [{ a: 1, b: 2 }, { b: 3 }, { a: 1, b: 3 }],
    [{ a: 1, clientSecret: 's' }, { clientSecret: null }, { a: 1 }],
    [{ api: { baseUrl: 'x' }, n: 1 }, { api: { baseUrl: 'y' } }, { api: { baseUrl: 'y' }, n: 1 }],
    [{ scopes: ['a', 'b'] }, { scopes: ['c'] }, { scopes: ['c'] }],
    [{ groups: ['g'] }, { groups: null }, {}],
    [{ a: 1 }, {}, { a: 1 }],
  ])('merges %j with %j into %j', (target, patch, expected) => {
    expect(mergePatch(target, patch)).toEqual(expected);
  });

  it('leaves the target untouched', () => {
    const target = { a: { b: 1 } };
    mergePatch(target, { a: { b: 2 } });
    expect(target).toEqual({ a: { b: 1 } });
  });
});

describe('chooseRegistration: how a client would be obtained, without registering', () => {
  const as = (extra: Partial<oauth.AuthorizationServer> = {}): oauth.AuthorizationServer => ({
    issuer: 'https://as.example',
    ...extra,
  });
  const https = 'https://nunq.example';
  const http = 'http://127.0.0.1:3000';

  it.each([
    [
      'a configured client first',
      as({ registration_endpoint: 'https://as.example/r' }),
      { clientId: 'c' },
      https,
      undefined,
      'configured',
    ],
    [
      'CIMD with an https publicUrl',
      as({ client_id_metadata_document_supported: true, registration_endpoint: 'https://as.example/r' }),
      undefined,
      https,
      undefined,
      'cimd',
    ],
    [
      'no CIMD from an http publicUrl: DCR',
      as({ client_id_metadata_document_supported: true, registration_endpoint: 'https://as.example/r' }),
      undefined,
      http,
      undefined,
      'dynamic',
    ],
    [
      'CIMD from an http publicUrl with mcp.clientMetadataUrl',
      as({ client_id_metadata_document_supported: true }),
      undefined,
      http,
      'https://cdn.example/cm.json',
      'cimd',
    ],
    [
      'DCR when offered',
      as({ registration_endpoint: 'https://as.example/r' }),
      undefined,
      https,
      undefined,
      'dynamic',
    ],
    ['none when nothing is offered', as(), undefined, https, undefined, 'none'],
  ] as const)('%s', (_name, server, configured, publicUrl, clientMetadataUrl, expected) => {
    expect(chooseRegistration({ as: server, configured, publicUrl, clientMetadataUrl })).toBe(expected);
  });
});

describe('mayAccess: who sees an integration limited to groups', () => {
  const open = { settings: { scopes: [] } };
  const limited = { settings: { scopes: [], groups: ['finance', 'ops'] } };
  it.each([
    [open, [], true],
    [open, ['x'], true],
    [limited, [], false],
    [limited, undefined, false],
    [limited, ['sales'], false],
    [limited, ['sales', 'ops'], true],
    [{ settings: { scopes: [], groups: [] } }, [], true],
  ] as const)('%j for groups %j: %s', (integration, groups, expected) => {
    expect(mayAccess(integration as { settings: { scopes: string[]; groups?: string[] } }, groups)).toBe(
      expected,
    );
  });
});
