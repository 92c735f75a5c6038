import { connect } from 'node:net';

/** What a raw socket saw: every byte the server sent, and when (ms after connecting) it closed. */
export interface RawExchange {
  response: string;
  closedAfterMs: number | undefined;
}

/**
 * Talks to a server over a bare TCP socket: sends `parts` one after another `gapMs` apart (a
 * slow client when the gap is long), and collects the answer until the server closes or
 * `waitMs` passes. For what `fetch` cannot send: broken framing, trickled headers and bodies.
 */
export function rawExchange(
  port: number,
  parts: Array<string | Buffer>,
  options: { gapMs?: number; waitMs?: number } = {},
): Promise<RawExchange> {
  const started = Date.now();
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearTimeout(giveUp);
      socket.destroy();
      resolve({
        response: Buffer.concat(chunks).toString('latin1'),
        closedAfterMs: closed ? Date.now() - started : undefined,
      });
    };
    const giveUp = setTimeout(() => finish(false), options.waitMs ?? 5000);
    socket.on('data', (d) => chunks.push(d));
    socket.on('close', () => finish(true));
    socket.on('error', () => {});
    let next = 0;
    const sendNext = () => {
      if (done || next >= parts.length || socket.destroyed) return;
      socket.write(parts[next++]!);
      timer = setTimeout(sendNext, options.gapMs ?? 0);
    };
    socket.on('connect', sendNext);
  });
}

/** Splits a raw response into status, lower-cased headers and body. */
export function parseRawResponse(raw: string): {
  status: number;
  headers: Record<string, string>;
  body: string;
} {
  const end = raw.indexOf('\r\n\r\n');
  const head = end === -1 ? raw : raw.slice(0, end);
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return {
    status: Number(statusLine.split(' ')[1] ?? 0),
    headers,
    body: end === -1 ? '' : raw.slice(end + 4),
  };
}
