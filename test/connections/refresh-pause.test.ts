import * as oauth from 'oauth4webapi';
import { describe, expect, it } from 'vitest';
import {
  defaultThrottlePauseMs,
  maxProviderPauseMs,
  refreshNotBefore,
} from '../../src/connections/refresh-policy.js';
import { classifyTokenError } from '../../src/oauth/errors.js';

/** A token endpoint error answer as oauth4webapi reports it. */
function answered(status: number, body: Record<string, unknown>, headers: Record<string, string> = {}) {
  return new oauth.ResponseBodyError('server responded with an error in the response body', {
    cause: body as oauth.OAuth2Error,
    response: new Response(JSON.stringify(body), { status, headers }),
  });
}

const loop = 'AADSTS50196: The server terminated an operation because it encountered a client request loop.';

describe('throttling answers are transient and pause the connection', () => {
  const now = 1_000_000;
  const table: Array<[string, ReturnType<typeof answered>, { throttled: boolean; pause: number | null }]> = [
    [
      'Entra AADSTS50196 as invalid_grant, no Retry-After',
      answered(400, { error: 'invalid_grant', error_description: loop, error_codes: [50196] }),
      { throttled: true, pause: defaultThrottlePauseMs },
    ],
    [
      'Entra AADSTS50196 named only in the description',
      answered(400, { error: 'invalid_grant', error_description: loop }),
      { throttled: true, pause: defaultThrottlePauseMs },
    ],
    [
      '429 with Retry-After: 7',
      answered(429, { error: 'rate_limited' }, { 'retry-after': '7' }),
      { throttled: true, pause: 7_000 },
    ],
    [
      '429 without Retry-After',
      answered(429, { error: 'rate_limited' }),
      { throttled: true, pause: defaultThrottlePauseMs },
    ],
    [
      '503 with Retry-After: 2 (not throttling, but the provider named a time)',
      answered(503, { error: 'temporarily_unavailable' }, { 'retry-after': '2' }),
      { throttled: false, pause: 2_000 },
    ],
    [
      'a Retry-After of a day is capped',
      answered(429, { error: 'rate_limited' }, { 'retry-after': '86400' }),
      { throttled: true, pause: maxProviderPauseMs },
    ],
    [
      '503 without Retry-After: no pause (the breaker paces it)',
      answered(503, { error: 'server_error' }),
      { throttled: false, pause: null },
    ],
  ];

  it.each(table)('%s', (_, error, expected) => {
    const classified = classifyTokenError(error, now);
    expect(classified.kind).toBe('transient');
    expect(classified.throttled).toBe(expected.throttled);
    const until = refreshNotBefore(classified, now);
    expect(until === null ? null : until - now).toBe(expected.pause);
  });

  it('a plain invalid_grant is still a lost grant, with no pause', () => {
    const classified = classifyTokenError(answered(400, { error: 'invalid_grant' }), now);
    expect(classified.kind).toBe('reauth_required');
    expect(refreshNotBefore(classified, now)).toBeNull();
  });
});
