/**
 * Crypto benchmarks. Each section measures our code against a bare baseline in the same run and
 * prints a markdown table with the ratio. Run: `node --import tsx bench/crypto.ts`.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Keyring, type SealContext, Sealer } from '../src/crypto/index.js';

/** How long and how often to measure; the defaults suit a shared machine. */
export interface BenchOptions {
  /** Measuring time per case, summed over all rounds (default 1500 ms). */
  durationMs?: number;
  /** Interleaved rounds; each case gets durationMs / rounds per round (default 10). */
  rounds?: number;
  /** Untimed run of every case before the first round (default 300 ms). */
  warmupMs?: number;
}

/**
 * One payload × operation: median ns/op of the bare baseline and of ours over the rounds, and the
 * median (and range) of the per-round ratios. Each round times bare and ours back to back, so a
 * paired ratio cancels most of the load other processes put on a shared machine.
 */
export interface SealOpenResult {
  payload: string;
  bytes: number;
  op: 'seal' | 'open';
  bareNs: number;
  oursNs: number;
  ratio: number;
  ratioMin: number;
  ratioMax: number;
}

/** The acceptance target for seal/open overhead over bare AES-256-GCM. */
export const SEAL_OPEN_TARGET_RATIO = 1.5;

const CONTEXT: SealContext = {
  table: 'oauth_tokens',
  rowId: '0190f4c2-7b1e-7cc0-9f3a-3d2c1b0a9f8e',
  field: 'access_token',
};

/** Token-shaped ASCII payloads: a JWT-like access token and an opaque refresh token. */
function payloads(): Array<{ name: string; text: string }> {
  const segment = (chars: number) => randomBytes(chars).toString('base64url').slice(0, chars);
  const header = 'eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIiwidHlwIjoiSldUIn0';
  const signature = segment(342); // RS256 signature length
  const jwt = `${header}.${segment(1400 - header.length - signature.length - 2)}.${signature}`;
  return [
    { name: 'access token (JWT-like)', text: jwt },
    { name: 'refresh token (opaque)', text: segment(64) },
  ];
}

let sink = 0; // consumed results, so the engine cannot drop the work

/** Runs fn in batches until ms have passed; returns ns per call. */
function timeFor(fn: () => { length: number }, ms: number): number {
  const budget = BigInt(Math.round(ms * 1e6));
  const start = process.hrtime.bigint();
  let calls = 0;
  let elapsed = 0n;
  do {
    for (let i = 0; i < 64; i++) sink += fn().length;
    calls += 64;
    elapsed = process.hrtime.bigint() - start;
  } while (elapsed < budget);
  return Number(elapsed) / calls;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * Seal/open overhead: `Sealer.seal`/`open` against bare AES-256-GCM on the same payload (random
 * 12-byte nonce, createCipheriv, setAAD of the same AAD bytes, update, final, getAuthTag; and the
 * reverse). The baseline is deliberately strict: raw Buffer key, payload already as bytes,
 * precomputed AAD, no encoding, so every string step of the sealed format counts as our overhead.
 */
export async function benchSealOpen(options: BenchOptions = {}): Promise<SealOpenResult[]> {
  const { durationMs = 1500, rounds = 10, warmupMs = 300 } = options;
  const rawKey = randomBytes(32);
  const sealer = new Sealer(
    Keyring.fromConfig({ activeKeyId: 'k1', keys: [{ id: 'k1', key: rawKey.toString('base64') }] }),
  );
  const aad = Buffer.from(`nunq-connect/v1|k1|${CONTEXT.table}|${CONTEXT.rowId}|${CONTEXT.field}`, 'utf8');

  const cases = payloads().map(({ name, text }) => {
    const bytes = Buffer.from(text, 'utf8');
    const bareEncrypt = () => {
      const nonce = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', rawKey, nonce, { authTagLength: 16 });
      cipher.setAAD(aad);
      const ciphertext = cipher.update(bytes);
      cipher.final();
      cipher.getAuthTag();
      return ciphertext;
    };
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', rawKey, nonce, { authTagLength: 16 });
    cipher.setAAD(aad);
    const ciphertext = Buffer.concat([cipher.update(bytes), cipher.final()]);
    const tag = cipher.getAuthTag();
    const bareDecrypt = () => {
      const decipher = createDecipheriv('aes-256-gcm', rawKey, nonce, { authTagLength: 16 });
      decipher.setAAD(aad);
      decipher.setAuthTag(tag);
      const plaintext = decipher.update(ciphertext);
      decipher.final();
      return plaintext;
    };
    const sealed = sealer.seal(text, CONTEXT);
    if (sealer.open(sealed, CONTEXT) !== text || !bareDecrypt().equals(bytes)) {
      throw new Error(`benchmark self-check failed for ${name}`);
    }
    return {
      name,
      bytes: bytes.length,
      runs: {
        seal: { bare: bareEncrypt, ours: () => sealer.seal(text, CONTEXT) },
        open: { bare: bareDecrypt, ours: () => sealer.open(sealed, CONTEXT) },
      },
    };
  });

  type Sample = { bare: number[]; ours: number[] };
  const samples = cases.map(() => ({
    seal: { bare: [], ours: [] } as Sample,
    open: { bare: [], ours: [] } as Sample,
  }));
  const ops = ['seal', 'open'] as const;
  const sides = ['bare', 'ours'] as const;

  for (const c of cases)
    for (const op of ops) for (const side of sides) timeFor(c.runs[op][side], warmupMs / 4);

  const perRound = durationMs / rounds;
  for (let round = 0; round < rounds; round++) {
    // Alternate which side goes first, so neither always runs on a warmer (or busier) machine.
    const order: ReadonlyArray<(typeof sides)[number]> = round % 2 === 0 ? sides : ['ours', 'bare'];
    cases.forEach((c, i) => {
      for (const op of ops) {
        for (const side of order) samples[i]![op][side].push(timeFor(c.runs[op][side], perRound));
      }
    });
    await new Promise((done) => setImmediate(done));
  }

  if (sink === 0) throw new Error('benchmark produced no output');
  return cases.flatMap((c, i) =>
    ops.map((op) => {
      const { bare, ours } = samples[i]![op];
      const ratios = ours.map((ns, round) => ns / bare[round]!);
      return {
        payload: c.name,
        bytes: c.bytes,
        op,
        bareNs: median(bare),
        oursNs: median(ours),
        ratio: median(ratios),
        ratioMin: Math.min(...ratios),
        ratioMax: Math.max(...ratios),
      };
    }),
  );
}

/** Markdown table of {@link benchSealOpen} results. */
export function sealOpenTable(results: SealOpenResult[]): string {
  const ns = (value: number) => Math.round(value).toLocaleString('en-US');
  const lines = [
    '| payload | bytes | op | bare AES-256-GCM ns/op | Sealer ns/op | ours/bare | range over rounds |',
    '|---|---:|---|---:|---:|---:|---:|',
    ...results.map(
      (r) =>
        `| ${r.payload} | ${r.bytes} | ${r.op} | ${ns(r.bareNs)} | ${ns(r.oursNs)} | ${r.ratio.toFixed(2)}×${
          r.ratio > SEAL_OPEN_TARGET_RATIO ? ' ⚠' : ''
        } | ${r.ratioMin.toFixed(2)}–${r.ratioMax.toFixed(2)} |`,
    ),
  ];
  return lines.join('\n');
}

/** Benchmark sections, run in order; add new ones (e.g. rotation throughput) here. */
const sections: Array<{ title: string; run: (options: BenchOptions) => Promise<string> }> = [
  {
    title: 'Seal/open overhead',
    run: async (options) => sealOpenTable(await benchSealOpen(options)),
  },
];

async function main(): Promise<void> {
  const options: BenchOptions = { durationMs: 1500, rounds: 10, warmupMs: 300 };
  process.stdout.write(
    `node ${process.version}, ${options.rounds} interleaved rounds, ${options.durationMs} ms per case; ns/op and ours/bare are medians over rounds (ratio paired per round); target ours/bare ≤ ${SEAL_OPEN_TARGET_RATIO.toFixed(2)}×\n`,
  );
  for (const section of sections) {
    process.stdout.write(`\n## ${section.title}\n\n${await section.run(options)}\n`);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  await main();
}
