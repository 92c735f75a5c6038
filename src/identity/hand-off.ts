import type { UsedHandOffRepository } from '../store/repos/used-hand-offs.js';
import type { Clock } from '../support/clock.js';
import { sha256Hex } from '../support/hash.js';
import type { JwtVerifier, PlatformClaims } from './jwt.js';

/** Why a hand-off token was refused: it does not verify (bad, expired, none configured), or it was used. */
export type HandOffRefusal = 'invalid' | 'used';

/** A sign-in hand-off that cannot start a session; `reason` is stable, the message never holds the token. */
export class HandOffRefusedError extends Error {
  readonly code = 'hand_off_refused';
  constructor(readonly reason: HandOffRefusal) {
    super(`hand-off refused: ${reason}`);
  }
}

/** Rows outlive the token by more than the verifier's clock tolerance (30 s). */
const keepAfterExpiryMs = 60_000;

/**
 * The platform's sign-in hand-off (`/session?token=JWT`): verifies the JWT on its own (not as an
 * Authorization header) and accepts a token that carries a `jti` once only, across instances.
 * A URL lands in browser history; once-only use makes a leaked hand-off link worthless.
 * @see RFC 7519 §4.1.7, RFC 8725 §3.10
 */
export class SessionHandOff {
  readonly #verify: JwtVerifier | undefined;
  readonly #used: UsedHandOffRepository;
  readonly #clock: Clock;

  constructor(deps: { verifyJwt: JwtVerifier | undefined; used: UsedHandOffRepository; clock: Clock }) {
    this.#verify = deps.verifyJwt;
    this.#used = deps.used;
    this.#clock = deps.clock;
  }

  /** The token's claims; throws `HandOffRefusedError('invalid')` when it does not verify. */
  async verify(token: string): Promise<PlatformClaims> {
    if (this.#verify === undefined) throw new HandOffRefusedError('invalid');
    try {
      return await this.#verify(token);
    } catch {
      throw new HandOffRefusedError('invalid');
    }
  }

  /** True when the token carries a `jti` that was already accepted (the decision is `redeem`'s). */
  async wasUsed(claims: PlatformClaims): Promise<boolean> {
    return claims.jti !== null && (await this.#used.isUsed(keyOf(claims, claims.jti)));
  }

  /**
   * Marks a token with a `jti` as used; throws `HandOffRefusedError('used')` if it already was.
   * Of concurrent uses exactly one succeeds. Tokens without a `jti` are not tracked.
   */
  async redeem(claims: PlatformClaims): Promise<void> {
    if (claims.jti === null) return;
    const now = this.#clock.now();
    const first = await this.#used.claim(
      keyOf(claims, claims.jti),
      Math.max(claims.exp * 1000, now) + keepAfterExpiryMs,
      now,
    );
    if (!first) throw new HandOffRefusedError('used');
  }
}

const keyOf = (claims: PlatformClaims, jti: string): string => sha256Hex(JSON.stringify([claims.iss, jti]));
