/**
 * A tiny HTTP server on 127.0.0.1 that records every request it gets (method, URL as sent, headers,
 * body) and answers 200 `{"ok":true}`: the webhook endpoint of the lifecycle tests, and a recording
 * upstream where a test must see exactly what the proxy forwarded.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedRequest {
  method: string;
  /** The request target exactly as it arrived (path and query). */
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
}

export interface RecordingServer {
  url: string;
  readonly received: ReceivedRequest[];
  /** Waits until `predicate` holds for the received requests (polling), or fails after `timeoutMs`. */
  waitFor(predicate: (received: readonly ReceivedRequest[]) => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** What the recorder answers to one request (default 200 `{"ok":true}`). */
export type RecorderAnswer = (
  request: ReceivedRequest,
) => { status: number; headers?: Record<string, string>; body?: string } | undefined;

/**
 * As `RecorderAnswer`, but may take its time (look something up, or answer late to test a client's
 * timeout); undefined answers 200 `{"ok":true}`, a rejected promise 500.
 */
export type AsyncRecorderAnswer = (
  request: ReceivedRequest,
) => Promise<{ status: number; headers?: Record<string, string>; body?: string } | undefined>;

function answerLater(res: ServerResponse, pending: ReturnType<AsyncRecorderAnswer>): void {
  const send = (answer: Awaited<ReturnType<AsyncRecorderAnswer>>) => {
    if (res.destroyed) return; // the client gave up meanwhile
    const {
      status,
      headers = {},
      body,
    } = answer ?? {
      status: 200,
      headers: { 'content-type': 'application/json' },
      body: '{"ok":true}',
    };
    res.writeHead(status, headers);
    res.end(body);
  };
  pending.then(send, () => send({ status: 500 }));
}

/** Starts the recorder on an ephemeral port of 127.0.0.1. */
export async function startRecordingServer(
  options: { answer?: RecorderAnswer; answerAsync?: AsyncRecorderAnswer } = {},
): Promise<RecordingServer> {
  const received: ReceivedRequest[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const got = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        at: Date.now(),
      };
      received.push(got);
      if (options.answerAsync !== undefined) {
        answerLater(res, options.answerAsync(got));
        return;
      }
      const answer = options.answer?.(got) ?? {
        status: 200,
        headers: { 'content-type': 'application/json' },
        body: '{"ok":true}',
      };
      res.writeHead(answer.status, answer.headers ?? {});
      if (answer.body === undefined) res.end();
      else res.end(answer.body);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    async waitFor(predicate, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (!predicate(received)) {
        if (Date.now() > deadline) {
          throw new Error(
            `recording server: condition not met within ${timeoutMs} ms (${received.length} requests)`,
          );
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    close: () =>
      new Promise((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}

/** A webhook event as contract §6 defines it. */
export interface WebhookEvent {
  id: string;
  type: string;
  createdAt: string;
  data: { connectionId: string; userId: string; integration: string; reason?: string };
}

/** The webhook events among the received requests (POSTs with a JSON body), in arrival order. */
export function webhookEvents(
  received: readonly ReceivedRequest[],
): Array<{ event: WebhookEvent; request: ReceivedRequest }> {
  return received
    .filter((r) => r.method === 'POST')
    .map((request) => ({ event: JSON.parse(request.body) as WebhookEvent, request }));
}

/**
 * Verifies `Nunq-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "t.body")>` independently of the
 * product's own signing code. Returns the reason when it does not verify.
 */
export function verifyWebhookSignature(
  request: ReceivedRequest,
  secret: string,
  options: { now?: number; toleranceSeconds?: number } = {},
): { ok: true; t: number } | { ok: false; reason: string } {
  const header = request.headers['nunq-signature'];
  if (typeof header !== 'string') return { ok: false, reason: 'no Nunq-Signature header' };
  const parts = new Map(
    header.split(',').map((p) => {
      const eq = p.indexOf('=');
      return [p.slice(0, eq).trim(), p.slice(eq + 1).trim()] as const;
    }),
  );
  const t = parts.get('t');
  const v1 = parts.get('v1');
  if (t === undefined || !/^\d+$/.test(t)) return { ok: false, reason: 'no unix time t' };
  if (v1 === undefined || !/^[0-9a-f]{64}$/.test(v1)) return { ok: false, reason: 'no hex v1' };
  const expected = createHmac('sha256', secret).update(`${t}.${request.body}`).digest();
  if (!timingSafeEqual(expected, Buffer.from(v1, 'hex'))) return { ok: false, reason: 'v1 does not match' };
  const now = options.now ?? Date.now() / 1000;
  if (Math.abs(now - Number(t)) > (options.toleranceSeconds ?? 300))
    return { ok: false, reason: 't is stale' };
  return { ok: true, t: Number(t) };
}
