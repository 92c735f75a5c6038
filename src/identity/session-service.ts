import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { SessionRepository } from '../store/repos/sessions.js';
import type { Clock } from '../support/clock.js';
import { sha256Hex } from '../support/hash.js';
import { browserBindingOf } from './browser-binding.js';
import { type Identity, isAdmin } from './identity.js';

export const sessionCookieName = (secure: boolean): string =>
  secure ? '__Host-nunq_session' : 'nunq_session';

const hash = sha256Hex;

/** Compares two strings in time independent of where they differ. */
export function constantTimeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}

/**
 * Browser sessions: an opaque 256-bit cookie value whose hash keys a database row (so every
 * instance sees every session), with a per-session CSRF token (synchronizer token pattern).
 */
export class SessionService {
  readonly #repo: SessionRepository;
  readonly #clock: Clock;
  readonly #ttlMs: number;
  readonly #admins: readonly string[];

  constructor(repo: SessionRepository, clock: Clock, ttlSeconds: number, admins: readonly string[]) {
    this.#repo = repo;
    this.#clock = clock;
    this.#ttlMs = ttlSeconds * 1000;
    this.#admins = admins;
  }

  get ttlSeconds(): number {
    return this.#ttlMs / 1000;
  }

  /** Starts a session; returns the cookie value (shown to the browser only, never stored). */
  async start(user: {
    userId: string;
    name: string | null;
    role: string | null;
    groups?: readonly string[];
  }): Promise<string> {
    const cookie = randomBytes(32).toString('base64url');
    const now = this.#clock.now();
    await this.#repo.create(
      hash(cookie),
      {
        userId: user.userId,
        userName: user.name,
        role: user.role,
        groups: [...(user.groups ?? [])],
        csrfToken: randomBytes(24).toString('base64url'),
        expiresAt: now + this.#ttlMs,
      },
      now,
    );
    return cookie;
  }

  /** The identity behind a cookie value, or undefined when unknown or expired. */
  async resolve(cookie: string): Promise<Identity | undefined> {
    if (cookie.length < 20 || cookie.length > 100) return undefined;
    const s = await this.#repo.find(hash(cookie), this.#clock.now());
    if (s === undefined) return undefined;
    return {
      userId: s.userId,
      name: s.userName,
      role: isAdmin(s.userId, s.role, this.#admins) ? 'admin' : 'user',
      via: 'session',
      csrfToken: s.csrfToken,
      groups: s.groups,
      browserBinding: browserBindingOf(cookie),
    };
  }

  async end(cookie: string): Promise<void> {
    await this.#repo.delete(hash(cookie));
  }
}
