import pino, { type Logger } from 'pino';

export type { Logger } from 'pino';

/**
 * Paths pino removes from every log line. Headers that carry credentials, and every field name
 * under which a token, code, verifier or secret could travel, at any of the first few depths.
 */
const secretFields = [
  'authorization',
  'cookie',
  'set-cookie',
  'access_token',
  'refresh_token',
  'id_token',
  'accessToken',
  'refreshToken',
  'idToken',
  // `code` and `state` stay redacted even though that also hides error codes: an authorization
  // code in a log line is worse than a less helpful one. Our own log fields avoid these names.
  'code',
  'authorization_code',
  'code_verifier',
  'codeVerifier',
  'client_secret',
  'clientSecret',
  'secret',
  'password',
  'token',
  'key',
  'state',
];

function redactPaths(): string[] {
  const paths: string[] = [];
  for (const f of secretFields) {
    const k = f.includes('-') ? `["${f}"]` : `.${f}`;
    paths.push(f.includes('-') ? `["${f}"]` : f, `*${k}`, `*.*${k}`, `*.*.*${k}`);
  }
  return paths;
}

/** Redacts query-string values from a URL path: callbacks carry `code`, `/session` a JWT. */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  if (q === -1) return url;
  const params = new URLSearchParams(url.slice(q + 1));
  const keys = [...new Set(params.keys())];
  return `${url.slice(0, q)}?${keys.map((k) => `${encodeURIComponent(k)}=[redacted]`).join('&')}`;
}

interface LoggedRequest {
  method?: string;
  url?: string;
  routeOptions?: { url?: string };
  id?: unknown;
}

/** Creates the service logger (pino) with secret redaction and a request serializer without query values. */
export function createLogger(options: { level?: string; destination?: pino.DestinationStream } = {}): Logger {
  return pino(
    {
      level: options.level ?? process.env.LOG_LEVEL ?? 'info',
      redact: { paths: redactPaths(), censor: '[redacted]' },
      serializers: {
        req: (req: LoggedRequest) => ({ id: req.id, method: req.method, url: redactUrl(req.url ?? '') }),
        res: (res: { statusCode?: number }) => ({ statusCode: res.statusCode }),
        err: pino.stdSerializers.err,
      },
    },
    options.destination,
  );
}
