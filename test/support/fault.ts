/**
 * Makes the REAL oidc-provider's token endpoint answer badly, switchable while the test runs:
 * a Koa middleware for `provider.use(...)`, which oidc-provider places in front of its own routes.
 * Nothing about the network is faked: the service talks to the real provider over loopback, and
 * the provider itself answers 503, 429 with Retry-After, HTML garbage, a token response without
 * `access_token`, takes its time before handling the request, or handles it and answers late
 * (the whole answer, or only its body after the headers went out).
 */
import { PassThrough } from 'node:stream';

/** What the token endpoint does with the next requests. */
export type TokenFault =
  | { kind: 'none' }
  | { kind: 'status'; status: number; retryAfterSeconds?: number; body?: unknown }
  | { kind: 'html' }
  | { kind: 'json'; body: Record<string, unknown> }
  /** Waits `ms` before oidc-provider handles the request (it then handles it as usual). */
  | { kind: 'slow'; ms: number }
  /** oidc-provider handles the request at once (rotating the refresh token), the answer leaves `ms` later. */
  | { kind: 'slowAnswer'; ms: number }
  /**
   * oidc-provider handles the request at once (rotating the refresh token); the status, the
   * headers and the body's first byte (JSON whitespace) leave at once, the rest of the body `ms` later.
   */
  | { kind: 'slowBody'; ms: number };

/** One request that reached the token endpoint. */
export interface TokenRequestSeen {
  at: number;
  /** The fault applied (`none` when oidc-provider answered normally). */
  fault: TokenFault['kind'];
}

/** The slice of a Koa context this middleware touches. */
interface KoaContext {
  method: string;
  path: string;
  status: number;
  body: unknown;
  type: string;
  set(field: string, value: string): void;
}

export interface TokenFaults {
  /** For `provider.use(...)`. */
  readonly middleware: (ctx: KoaContext, next: () => Promise<void>) => Promise<void>;
  /** Switches the fault for every following token request. */
  set(fault: TokenFault): void;
  /** Back to normal answers. */
  clear(): void;
  /** Every token request seen, in order. */
  readonly seen: TokenRequestSeen[];
  /** How many token requests were answered with the given fault kind (all faults when omitted). */
  count(kind?: Exclude<TokenFault['kind'], 'none'>): number;
  /** Resolves when the next token request arrives (before any delay is applied). */
  nextRequest(): Promise<TokenRequestSeen>;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Faults for the token endpoint at `tokenPath` (oidc-provider's default is `/token`). */
export function createTokenFaults(tokenPath = '/token'): TokenFaults {
  let fault: TokenFault = { kind: 'none' };
  const seen: TokenRequestSeen[] = [];
  let waiters: Array<(s: TokenRequestSeen) => void> = [];

  const middleware = async (ctx: KoaContext, next: () => Promise<void>): Promise<void> => {
    if (ctx.method !== 'POST' || ctx.path !== tokenPath) return next();
    const current = fault;
    const entry: TokenRequestSeen = { at: Date.now(), fault: current.kind };
    seen.push(entry);
    const notify = waiters;
    waiters = [];
    for (const w of notify) w(entry);
    switch (current.kind) {
      case 'none':
        return next();
      case 'slow':
        await sleep(current.ms);
        return next();
      case 'slowAnswer':
        await next();
        await sleep(current.ms);
        return;
      case 'slowBody': {
        await next();
        const body = typeof ctx.body === 'string' ? ctx.body : JSON.stringify(ctx.body);
        const stream = new PassThrough();
        stream.write(' ');
        setTimeout(() => stream.end(body), current.ms);
        ctx.body = stream;
        return;
      }
      case 'status':
        ctx.status = current.status;
        if (current.retryAfterSeconds !== undefined)
          ctx.set('retry-after', String(current.retryAfterSeconds));
        if (current.body === undefined) {
          ctx.type = 'text/plain';
          ctx.body = `HTTP ${current.status}`;
        } else {
          ctx.type = 'application/json';
          ctx.body = JSON.stringify(current.body);
        }
        return;
      case 'html':
        ctx.status = 200;
        ctx.type = 'text/html';
        ctx.body = '<!doctype html><html><body><h1>Maintenance</h1><p>Back soon.</p></body></html>';
        return;
      case 'json':
        ctx.status = 200;
        ctx.type = 'application/json';
        ctx.body = JSON.stringify(current.body);
        return;
    }
  };

  return {
    middleware,
    set(f) {
      fault = f;
    },
    clear() {
      fault = { kind: 'none' };
    },
    seen,
    count(kind) {
      return seen.filter((s) => (kind === undefined ? s.fault !== 'none' : s.fault === kind)).length;
    },
    nextRequest() {
      return new Promise((resolve) => waiters.push(resolve));
    },
  };
}
