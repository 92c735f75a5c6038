/**
 * A `Response` whose body is already in memory (outbound.ts's `smallFetch` reads token,
 * revocation and registration answers whole). Reading it as text, JSON or bytes takes no web
 * stream: the standard `Response` would wrap the bytes in a ReadableStream and read them back
 * through it, which was about a twentieth of a refresh storm's CPU in the service's process
 * (docs/benchmarks.md, Refresh storm). It stays a `Response` (oauth4webapi checks that), and
 * keeps its rules: a body is read once, `clone()` before reading, UTF-8 without a leading BOM.
 * The body as a stream (`body`) is made only when asked for.
 */
export class BufferedResponse extends Response {
  readonly #bytes: Buffer | null;
  #used = false;
  #stream: ReadableStream<Uint8Array<ArrayBuffer>> | null | undefined;

  /** `bytes` null: a response without a body (204, 304). */
  constructor(bytes: Buffer | null, init: ResponseInit) {
    super(null, init);
    this.#bytes = bytes;
  }

  override get bodyUsed(): boolean {
    return this.#used;
  }

  /** The body as a stream, made on first use; the bytes then belong to it (text() and the rest refuse). */
  override get body(): ReadableStream<Uint8Array<ArrayBuffer>> | null {
    if (this.#stream === undefined) {
      this.#stream = this.#bytes === null ? null : new Response(new Uint8Array(this.#take())).body;
    }
    return this.#stream;
  }

  override async arrayBuffer(): Promise<ArrayBuffer> {
    const bytes = this.#take();
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  }

  override async bytes(): Promise<Uint8Array<ArrayBuffer>> {
    return new Uint8Array(await this.arrayBuffer());
  }

  override async blob(): Promise<Blob> {
    return new Blob([await this.arrayBuffer()], { type: this.headers.get('content-type') ?? '' });
  }

  override async text(): Promise<string> {
    const text = this.#take().toString('utf8');
    // UTF-8 decode as the Fetch standard does it: a leading byte order mark is dropped.
    return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  }

  override async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }

  override clone(): BufferedResponse {
    if (this.#used) throw new TypeError('Response.clone: Body has already been consumed.');
    return new BufferedResponse(this.#bytes, {
      status: this.status,
      statusText: this.statusText,
      headers: this.headers,
    });
  }

  #take(): Buffer {
    if (this.#used) throw new TypeError('Body is unusable: Body has already been read');
    this.#used = true;
    return this.#bytes ?? Buffer.alloc(0);
  }
}
