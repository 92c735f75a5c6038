import { inspect } from 'node:util';

/** Who the user is at the provider, as far as the provider says (never a secret). */
export interface AccountIdentity {
  id?: string;
  name?: string;
  email?: string;
}

/**
 * Tokens from one token-endpoint response. The values sit in private fields; `toJSON` and
 * `inspect` print `[redacted]`, so a token set logged or serialised by mistake shows nothing.
 */
export class TokenSet {
  readonly #accessToken: string;
  readonly #refreshToken: string | undefined;
  readonly #idToken: string | undefined;
  readonly tokenType: string;
  /** Epoch ms; null when the provider gave no `expires_in` (valid until a 401 says otherwise). */
  readonly expiresAt: number | null;
  /** Granted scopes when the provider said; null when it did not (then the requested ones hold). */
  readonly scopes: string[] | null;
  readonly account: AccountIdentity;
  /** The authorization server that issued them (its metadata `issuer`); undefined when unknown. */
  readonly issuer: string | undefined;
  /** This connection's own API base URL (Salesforce `instance_url`, an Atlassian site); not a secret. */
  readonly apiBaseUrl: string | undefined;

  constructor(fields: {
    accessToken: string;
    refreshToken?: string | undefined;
    idToken?: string | undefined;
    tokenType: string;
    expiresAt: number | null;
    scopes: string[] | null;
    account: AccountIdentity;
    issuer?: string | undefined;
    apiBaseUrl?: string | undefined;
  }) {
    this.#accessToken = fields.accessToken;
    this.#refreshToken = fields.refreshToken;
    this.#idToken = fields.idToken;
    this.tokenType = fields.tokenType;
    this.expiresAt = fields.expiresAt;
    this.scopes = fields.scopes;
    this.account = fields.account;
    this.issuer = fields.issuer;
    this.apiBaseUrl = fields.apiBaseUrl;
  }

  /** The same tokens with this connection's API base URL. */
  withApiBaseUrl(apiBaseUrl: string): TokenSet {
    return new TokenSet({
      accessToken: this.#accessToken,
      refreshToken: this.#refreshToken,
      idToken: this.#idToken,
      tokenType: this.tokenType,
      expiresAt: this.expiresAt,
      scopes: this.scopes,
      account: this.account,
      issuer: this.issuer,
      apiBaseUrl,
    });
  }

  get accessToken(): string {
    return this.#accessToken;
  }
  get refreshToken(): string | undefined {
    return this.#refreshToken;
  }
  get idToken(): string | undefined {
    return this.#idToken;
  }

  toJSON(): string {
    return '[redacted]';
  }
  [inspect.custom](): string {
    return '[TokenSet redacted]';
  }
}
