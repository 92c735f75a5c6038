/**
 * Every column that holds a sealed value, with the column that identifies its row. Key rotation
 * walks this list, and the tests scan the database for plaintext with it: a new sealed column
 * must be added here. The AAD of a value is (table, row id, column name).
 */
export const sealedColumns = [
  { table: 'providers', idColumn: 'id', columns: ['client_secret_sealed'] },
  { table: 'integrations', idColumn: 'id', columns: ['client_secret_sealed'] },
  {
    table: 'connections',
    idColumn: 'id',
    columns: ['access_token_sealed', 'refresh_token_sealed', 'id_token_sealed'],
  },
  { table: 'pending_authorizations', idColumn: 'state_hash', columns: ['code_verifier_sealed'] },
  { table: 'oauth_clients', idColumn: 'id', columns: ['client_secret_sealed'] },
  { table: 'webhook_endpoints', idColumn: 'id', columns: ['secret_sealed'] },
  { table: 'revocations', idColumn: 'id', columns: ['token_sealed'] },
  { table: 'pending_confirmations', idColumn: 'id', columns: ['tokens_sealed'] },
  { table: 'mcp_registrations', idColumn: 'id', columns: ['registration_sealed'] },
] as const;

export type SealedTable = (typeof sealedColumns)[number]['table'];
