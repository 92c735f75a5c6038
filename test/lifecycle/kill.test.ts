import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TokenFault } from '../support/fault.js';
import { type Lifecycle, proxyPath, startLifecycle } from '../support/lifecycle.js';
import type { TestService } from '../support/service.js';

/** The child's refresh lease: longer than the provider's delay, as a lease must outlive a token request. */
const childLeaseMs = 4_000;
const providerDelayMs = 3_000;

/** What oidc-provider did with refresh requests, from its own events (the killed child's included). */
interface GrantEvent {
  at: number;
  event: 'grant.success' | 'grant.error';
  error?: string;
}

describe.each(['postgres', 'sqlite'] as const)('an instance SIGKILLed mid-refresh, on %s', (kind) => {
  let lc: Lifecycle;
  let svc: TestService;
  const grants: GrantEvent[] = [];

  beforeAll(async () => {
    lc = await startLifecycle({ kind, webhooks: false });
    const onGrant =
      (event: GrantEvent['event']) =>
      (ctx: { oidc?: { params?: { grant_type?: unknown } } }, error?: Error) => {
        if (ctx.oidc?.params?.grant_type !== 'refresh_token') return;
        grants.push({ at: Date.now(), event, ...(error === undefined ? {} : { error: error.message }) });
      };
    lc.oidc.provider.on('grant.success', onGrant('grant.success') as (...args: never[]) => void);
    lc.oidc.provider.on('grant.error', onGrant('grant.error') as (...args: never[]) => void);
    svc = await lc.startService({ background: false });
  });

  afterAll(async () => {
    await lc?.close();
  });

  /**
   * Connects `user`, lets the token expire, has a child instance start the refresh against the slow
   * provider, SIGKILLs it after the provider got the request, then uses the connection in-process.
   */
  async function killMidRefresh(user: string, fault: TokenFault) {
    const id = await lc.connect(svc, user);
    const child = await lc.startChildService({ leaseMs: childLeaseMs });
    await lc.waitForExpiry(svc, user, id);
    lc.faults.set(fault);
    const arrived = lc.faults.nextRequest();
    const doomed = fetch(`${child.url}${proxyPath(id)}`, {
      headers: { authorization: `Bearer ${await svc.token(user)}` },
    }).then(
      (r) => `HTTP ${r.status}`,
      () => 'no answer',
    );
    const request = await arrived;
    await sleep(500);
    child.kill('SIGKILL');
    expect(await child.exited).toBe('SIGKILL');
    expect(await doomed).toBe('no answer');
    lc.faults.clear(); // the provider is healthy again for everyone else

    const r = await svc.api(user, proxyPath(id));
    const body = await r.text();
    const providerSaw = grants.filter((g) => g.at >= request.at);
    const story = `in-process call → ${r.status} ${body.slice(0, 120)}; oidc-provider's refresh_token grant events (ms after it received the killed request): ${JSON.stringify(
      providerSaw.map((g) => ({ ...g, at: g.at - request.at })),
    )}; reuse detected: ${lc.oidc.counters.refreshReuseDetected}`;
    return { id, r, body, story, request };
  }

  // What happens here: when the delay ends, oidc-provider handles a request whose client is gone;
  // Node has destroyed the request stream, so the body cannot be read and the provider answers
  // invalid_request (no grant_type) to nobody. The refresh token is never consumed.
  it('provider slow before handling: after the lease expires another instance refreshes; nothing is lost', async () => {
    const { id, r, body, story, request } = await killMidRefresh('u-slow', {
      kind: 'slow',
      ms: providerDelayMs,
    });
    expect(r.status, story).toBe(200);
    expect(JSON.parse(body).items).toHaveLength(3);
    // It waited for the dead instance's lease rather than refreshing next to it.
    const refresh = lc.tokenCalls.filter((c) => c.grantType === 'refresh_token').at(-1)!;
    // (The child took its lease shortly before its token request reached the provider.)
    expect(refresh.startedAt).toBeGreaterThanOrEqual(request.at + childLeaseMs - 1_000);
    expect((await lc.connection(svc, 'u-slow', id)).status, story).toBe('active');

    // Still usable through the next rotation: the killed request did not poison the grant later on.
    await lc.waitForExpiry(svc, 'u-slow', id);
    const again = await svc.api('u-slow', proxyPath(id));
    expect(again.status, story).toBe(200);
    expect((await lc.connection(svc, 'u-slow', id)).status, story).toBe('active');
    expect(lc.oidc.counters.refreshReuseDetected, story).toBe(0);
  });

  // What happens here (oidc-provider 9, rotation on, no reuse grace period): the provider consumes
  // the presented refresh token inside its grant handler, BEFORE it answers; the answer carrying
  // the new refresh token goes to a dead socket. Only the dead process ever saw the new token, so
  // no client can keep this grant: the next refresh presents the consumed token, the provider
  // detects reuse and revokes the grant. The product cannot prevent that (a provider with a reuse
  // grace period would); what it must do is fail loudly and recoverably: the connection becomes
  // needs_reauth exactly once, with a reason that names the interrupted refresh, the owner is
  // notified, callers get 409 with the reconnect URL, and nothing is silently half-broken.
  it('provider rotates, then the instance dies before hearing the answer: needs_reauth, said once, recoverable', async () => {
    const { id, r, body, story } = await killMidRefresh('u-late', {
      kind: 'slowAnswer',
      ms: providerDelayMs,
    });
    expect(r.status, story).toBe(409);
    const problem = JSON.parse(body);
    expect(problem.code, story).toBe('connection_needs_reauth');
    expect(problem.reconnectUrl, story).toMatch(/\/connect\//);
    const c = await lc.connection(svc, 'u-late', id);
    expect(c.status, story).toBe('needs_reauth');
    expect(c.statusReason, story).toBe('invalid_grant:after_interrupted_refresh');
    const notes = (await (await svc.api('u-late', '/api/v1/notifications')).json()) as Array<{
      type: string;
      connectionId: string;
    }>;
    expect(
      notes.filter((n) => n.type === 'connection.needs_reauth' && n.connectionId === id),
      story,
    ).toHaveLength(1);
    // Said once: further calls do not notify again.
    expect((await svc.api('u-late', proxyPath(id))).status).toBe(409);
    const again = (await (await svc.api('u-late', '/api/v1/notifications')).json()) as Array<{
      type: string;
    }>;
    expect(again.filter((n) => n.type === 'connection.needs_reauth')).toHaveLength(1);
  });
});
