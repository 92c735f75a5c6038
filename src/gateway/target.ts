/**
 * The proxy's target resolver: where a proxied request goes, or why it may not go anywhere.
 * Pure (no I/O, no Fastify), so the MCP gateway reuses it and a table of cases tests it.
 *
 * The path is judged as the most lenient upstream could read it, and sent exactly as the caller
 * wrote it (never re-normalised), so what was judged is what is sent:
 * - the request target is printable ASCII without `\` (RFC 9112 §3.2; Node refuses raw bytes
 *   beyond ASCII before we see them);
 * - every `%` starts two hex digits (no `%u002e`, no stray `%`), and the bytes they encode are
 *   shortest-form UTF-8 (no overlong `%c0%ae`, `%e0%80%ae`, `%f0%80%80%ae`, no surrogates);
 * - once decoded and NFKC-normalised (fullwidth `．` and `／` become `.` and `/`), no segment is
 *   only dots after dropping a `;parameter` and trimming whitespace (`..`, `...`, `.. `, `..;x`),
 *   no control character or backslash appears, and nothing names another host (absolute or
 *   protocol-relative URL, `user@host`);
 * - a second decoding (`%252e`, `%25c0%25ae`) would not change that verdict.
 */

/** Why a proxied path is refused; every refusal is a 400 before the upstream is asked. */
export type TargetRefusal =
  | 'not_ascii'
  | 'bad_percent_encoding'
  | 'not_utf8'
  | 'control_character'
  | 'backslash'
  | 'dot_segment'
  | 'leaves_base'
  | 'double_encoded';

/** Where a proxied request goes: the integration's API origin and the path (with query) under its base path. */
export interface UpstreamTarget {
  origin: URL;
  path: string;
}

export type TargetResult = { ok: true; target: UpstreamTarget } | { ok: false; refusal: TargetRefusal };

/**
 * Resolves the upstream target for `rawRest` (what follows `/proxy` in the URL as sent) under the
 * integration's `api.baseUrl`, or says why it is refused. Redirects are never followed later, so
 * this is the only place the destination is decided.
 */
export function resolveUpstreamTarget(baseUrl: string, rawRest: string): TargetResult {
  const hash = rawRest.indexOf('#');
  const rest = hash === -1 ? rawRest : rawRest.slice(0, hash);
  if (unsafeTargetChar.test(rest)) {
    return { ok: false, refusal: rest.includes('\\') ? 'backslash' : 'not_ascii' };
  }
  const q = rest.indexOf('?');
  const path = q === -1 ? rest : rest.slice(0, q);
  const query = q === -1 ? '' : rest.slice(q);
  // A query is the upstream's to read; only encoded line breaks and NUL (header splitting at lax servers) are refused.
  if (query.length > 0 && query.includes('%') && encodedLineBreak.test(query)) {
    return { ok: false, refusal: 'control_character' };
  }
  const refusal = inspectPath(path);
  if (refusal !== undefined) return { ok: false, refusal };
  const base = parsedBase(baseUrl);
  const start = firstNonSlash(path);
  return {
    ok: true,
    target: {
      origin: base.origin,
      path: `${base.basePath}/${start === 0 ? path : path.slice(start)}${query}`,
    },
  };
}

/** Why `path` (no query) may not be proxied, or undefined when it may. */
export function inspectPath(path: string): TargetRefusal | undefined {
  if (!path.includes('%')) return inspectDecoded(path);
  const decoded = decodeStrictly(path);
  if (typeof decoded !== 'string') return decoded.refusal;
  const once = normalised(decoded);
  const refusal = inspectDecoded(once);
  if (refusal !== undefined) return refusal;
  if (!once.includes('%')) return undefined;
  // What is left encoded after one decoding must not become a refusal after a second one.
  if (iisUnicodeEscape.test(once)) return 'double_encoded';
  const twice = decodeLeniently(once);
  return twice === undefined || inspectDecoded(normalised(twice)) !== undefined
    ? 'double_encoded'
    : undefined;
}

/** Printable ASCII only, and no backslash (some servers read it as `/`). */
const unsafeTargetChar = /[^\u0021-\u005b\u005d-\u007e]/;
const encodedLineBreak = /%(?:00|0a|0d)/i;
const iisUnicodeEscape = /%u[0-9a-f]{4}/i;
/** An absolute URL (`http://`, also after slashes), a protocol-relative `//host`, or `user@host` first. */
const leavesBase = /^\/*[a-z][a-z0-9+.-]*:\/\/|^\/{2,}|^\/*[^/]*@/i;
/** The WHATWG UTF-8 decoder in fatal mode refuses overlong forms, surrogates and truncated sequences. */
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The refusals a decoded (and normalised) path can earn: controls, backslash, dot segments, another host. */
function inspectDecoded(path: string): TargetRefusal | undefined {
  let segmentStart = 0;
  for (let i = 0; i <= path.length; i++) {
    const c = i === path.length ? 0x2f : path.charCodeAt(i);
    if (c === 0x2f) {
      if (isDotSegment(path, segmentStart, i)) return 'dot_segment';
      segmentStart = i + 1;
    } else if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) {
      return 'control_character';
    } else if (c === 0x5c) {
      return 'backslash';
    }
  }
  return leavesBase.test(path) ? 'leaves_base' : undefined;
}

/**
 * Whether `path[start, end)` is only dots once a `;parameter` is dropped (Tomcat, Jetty and
 * Spring read `..;x` as `..`) and whitespace trimmed (`..%20`): `.`, `..`, `...`, `.. ;x`.
 */
function isDotSegment(path: string, start: number, end: number): boolean {
  const semicolon = path.indexOf(';', start);
  let stop = semicolon === -1 || semicolon > end ? end : semicolon;
  let from = start;
  while (from < stop && isWhitespace(path.charCodeAt(from))) from++;
  while (stop > from && isWhitespace(path.charCodeAt(stop - 1))) stop--;
  if (from === stop) return false;
  for (let i = from; i < stop; i++) if (path.charCodeAt(i) !== 0x2e) return false;
  return true;
}

/** The characters `String.prototype.trim` removes. */
function isWhitespace(c: number): boolean {
  return (
    c === 0x20 ||
    (c >= 0x09 && c <= 0x0d) ||
    c === 0xa0 ||
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x202f ||
    c === 0x205f ||
    c === 0x3000 ||
    c === 0xfeff
  );
}

/** NFKC (fullwidth and compatibility forms fold to ASCII), only when there is something beyond ASCII. */
function normalised(s: string): string {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return s.normalize('NFKC');
  return s;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const lower = c | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x57;
  return -1;
}

/**
 * Percent-decodes an ASCII path; every `%` must start two hex digits and the bytes must be valid
 * UTF-8. Paths whose escapes are all ASCII (`%20`, `%3A`) are decoded without a byte buffer.
 */
function decodeStrictly(path: string): string | { refusal: TargetRefusal } {
  let out = '';
  let copied = 0;
  for (let i = 0; i < path.length; i++) {
    if (path.charCodeAt(i) !== 0x25) continue;
    const byte = escapedByte(path, i);
    if (byte === -1) return { refusal: 'bad_percent_encoding' };
    if (byte >= 0x80) return decodeUtf8Escapes(path);
    out += path.slice(copied, i) + String.fromCharCode(byte);
    copied = i + 3;
    i += 2;
  }
  return out + path.slice(copied);
}

/** The byte `%XX` at `i` encodes, or -1 when it is not two hex digits. */
function escapedByte(s: string, i: number): number {
  const hi = i + 2 < s.length ? hexValue(s.charCodeAt(i + 1)) : -1;
  const lo = hi === -1 ? -1 : hexValue(s.charCodeAt(i + 2));
  return lo === -1 ? -1 : (hi << 4) | lo;
}

/** The slow path of `decodeStrictly`: escapes beyond ASCII, decoded as strict UTF-8. */
function decodeUtf8Escapes(path: string): string | { refusal: TargetRefusal } {
  const bytes = new Uint8Array(path.length);
  let n = 0;
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c !== 0x25) {
      bytes[n++] = c;
      continue;
    }
    const byte = escapedByte(path, i);
    if (byte === -1) return { refusal: 'bad_percent_encoding' };
    bytes[n++] = byte;
    i += 2;
  }
  try {
    return strictUtf8.decode(bytes.subarray(0, n));
  } catch {
    return { refusal: 'not_utf8' };
  }
}

/** A second decoding as a lax server would do it: valid `%XX` decoded, the rest kept; undefined when not UTF-8. */
function decodeLeniently(s: string): string | undefined {
  const raw = Buffer.from(s, 'utf8');
  const bytes = new Uint8Array(raw.length);
  let n = 0;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    const hi = c === 0x25 && i + 2 < raw.length ? hexValue(raw[i + 1]!) : -1;
    const lo = hi === -1 ? -1 : hexValue(raw[i + 2]!);
    if (lo === -1) {
      bytes[n++] = c;
      continue;
    }
    bytes[n++] = (hi << 4) | lo;
    i += 2;
  }
  try {
    return strictUtf8.decode(bytes.subarray(0, n));
  } catch {
    return undefined;
  }
}

function firstNonSlash(path: string): number {
  let i = 0;
  while (i < path.length && path.charCodeAt(i) === 0x2f) i++;
  return i;
}

const parsedBases = new Map<string, { origin: URL; basePath: string }>();

/** An integration's base URL, parsed once (there are only as many as integrations). */
function parsedBase(baseUrl: string): { origin: URL; basePath: string } {
  let parsed = parsedBases.get(baseUrl);
  if (parsed === undefined) {
    const base = new URL(baseUrl);
    parsed = { origin: new URL(base.origin), basePath: base.pathname.replace(/\/+$/, '') };
    if (parsedBases.size >= 1_000) parsedBases.clear();
    parsedBases.set(baseUrl, parsed);
  }
  return parsed;
}
