/**
 * Crypto benchmarks. Each section measures our code against a bare baseline in the same run and
 * prints a markdown table with the ratio. Run: `node --import tsx bench/crypto.ts`
 * [`--section seal|rotation|all`] [`--rows N`] (rows the rotation section seeds, default 100000).
 */
import { createCipheriv, createDecipheriv, randomBytes, randomUUID } from 'node:crypto';
import { cpus } from 'node:os';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { sql } from 'kysely';
import { generateKey, Keyring, type SealContext, Sealer } from '../src/crypto/index.js';
import { type DatabaseKind, openStore, type Store } from '../src/store/database.js';
import { countStaleValues, rotateKeys } from '../src/store/key-rotation.js';
import { migrateToLatest } from '../src/store/migrate.js';
import { sealedColumns } from '../src/store/sealed-columns.js';
import { createTestDatabase } from '../test/support/databases.js';

/** How long and how often to measure; the defaults suit a shared machine. */
export interface BenchOptions {
  /** Measuring time per case, summed over all rounds (default 1500 ms). */
  durationMs?: number;
  /** Interleaved rounds; each case gets durationMs / rounds per round (default 10). */
  rounds?: number;
  /** Untimed run of each measured function before the first round (default 200 ms). */
  warmupMs?: number;
  /** Connections rows the rotation section seeds, 3 sealed values each (default 100000). */
  rows?: number;
}

/**
 * One payload × operation: median CPU ns/op of the bare baseline and of ours over the rounds, and the
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

/**
 * Runs fn in batches for about ms of wall time; returns CPU nanoseconds per call. CPU time
 * (`process.cpuUsage`) leaves out the time the process waits for a core, which on a shared machine
 * is most of the noise in wall-clock figures; on an idle machine the two agree.
 */
function timeFor(fn: () => { length: number }, ms: number): number {
  const budget = BigInt(Math.round(ms * 1e6));
  const start = process.hrtime.bigint();
  const cpuStart = process.cpuUsage();
  let calls = 0;
  do {
    for (let i = 0; i < 64; i++) sink += fn().length;
    calls += 64;
  } while (process.hrtime.bigint() - start < budget);
  const cpu = process.cpuUsage(cpuStart);
  return ((cpu.user + cpu.system) * 1000) / calls;
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
  const { durationMs = 1500, rounds = 10, warmupMs = 200 } = options;
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

  for (const c of cases) for (const op of ops) for (const side of sides) timeFor(c.runs[op][side], warmupMs);

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
    '| payload | bytes | op | bare AES-256-GCM CPU ns/op | Sealer CPU ns/op | ours/bare | range over rounds |',
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

/** Rows per transaction when seeding, and per batch in the baselines (rotateKeys' default batch). */
const BATCH = 500;

/** The sealed columns of `connections`, as key rotation walks them. */
const TOKEN_COLUMNS = sealedColumns.find((t) => t.table === 'connections')!.columns;
type TokenColumn = (typeof TOKEN_COLUMNS)[number];

/** Key-rotation throughput on one engine: `rotateKeys` against plain UPDATEs, in the same run. */
export interface RotationBenchResult {
  kind: DatabaseKind;
  rows: number;
  /** Sealed values: 3 per row. */
  values: number;
  seedMs: number;
  staleBefore: number;
  staleAfter: number;
  /** `rotateKeys` (k1 → k2, default batch size): wall time and this process's CPU time. */
  rotateMs: number;
  rotateCpuMs: number;
  /** As many plain one-column UPDATEs by primary key as rotateKeys issues (one per value), no crypto. */
  baselineMs: number;
  baselineCpuMs: number;
  /** open(k1) + seal(k2) of `values` values, in process, no database: the crypto share of rotation. */
  cryptoCpuMs: number;
  /** Prototype of batched rotation (k2 → k3): one multi-row compare-and-swap UPDATE per batch. */
  batchedMs: number;
  batchedStaleAfter: number;
}

const cpuMs = (since: NodeJS.CpuUsage): number => {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1000;
};

/** Runs fn; returns its wall and process CPU milliseconds. */
async function timed(fn: () => Promise<unknown>): Promise<{ ms: number; cpuMs: number }> {
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  await fn();
  return { ms: Number(process.hrtime.bigint() - start) / 1e6, cpuMs: cpuMs(cpu) };
}

/** Token-shaped plaintexts per column: a JWT-like access token, an opaque refresh token, an ID token. */
function tokenPlaintexts(): Record<TokenColumn, string> {
  const [jwt, opaque] = payloads();
  return {
    access_token_sealed: jwt!.text,
    refresh_token_sealed: opaque!.text,
    id_token_sealed: jwt!.text.slice(0, 900),
  };
}

const sealerFor = (
  activeKeyId: string,
  keys: Record<string, string>,
): { keyring: Keyring; sealer: Sealer } => {
  const keyring = Keyring.fromConfig({
    activeKeyId,
    keys: Object.entries(keys).map(([id, key]) => ({ id, key })),
  });
  return { keyring, sealer: new Sealer(keyring) };
};

/** Inserts `rows` connections, tokens sealed with the right AAD, BATCH rows per transaction. */
async function seedConnections(store: Store, sealer: Sealer, rows: number): Promise<void> {
  const plain = tokenPlaintexts();
  const now = Date.now();
  for (let start = 0; start < rows; start += BATCH) {
    const batch = Array.from({ length: Math.min(BATCH, rows - start) }, (_, i) => {
      const id = randomUUID();
      const sealed = (field: TokenColumn) =>
        sealer.seal(plain[field], { table: 'connections', rowId: id, field });
      return {
        id,
        user_id: `bench-user-${start + i}`,
        integration_id: 'bench',
        status: 'active' as const,
        scopes: '["openid","offline_access"]',
        access_token_sealed: sealed('access_token_sealed'),
        refresh_token_sealed: sealed('refresh_token_sealed'),
        id_token_sealed: sealed('id_token_sealed'),
        token_type: 'Bearer',
        access_token_expires_at: now + 3_600_000,
        next_refresh_at: now + 3_300_000,
        refresh_failures: 0,
        version: 0,
        created_at: now,
        updated_at: now,
      };
    });
    await store.db.transaction().execute((trx) => trx.insertInto('connections').values(batch).execute());
  }
}

/** Leaves the table in the same state before each timed phase: no dead tuples, an empty WAL. */
async function settle(store: Store): Promise<void> {
  if (store.kind === 'postgres') await sql`vacuum analyze connections`.execute(store.db);
  else await sql`pragma wal_checkpoint(truncate)`.execute(store.db);
}

/**
 * The baseline: the statements rotateKeys issues, without the crypto, the SELECTs and the
 * compare-and-swap: for each sealed column, one `update connections set <column> = ? where id = ?`
 * per row in primary-key order, BATCH per transaction, each writing a random value of the length
 * a sealed value has (so the database writes the same bytes).
 */
async function plainUpdates(store: Store, ids: string[]): Promise<void> {
  const sample = tokenPlaintexts();
  for (const column of TOKEN_COLUMNS) {
    const length = `v1.k2.`.length + Math.ceil(((12 + sample[column].length + 16) * 4) / 3);
    const value = randomBytes(length).toString('base64url').slice(0, length);
    for (let start = 0; start < ids.length; start += BATCH) {
      const batch = ids.slice(start, start + BATCH);
      await store.db.transaction().execute(async (trx) => {
        for (const id of batch) {
          await trx
            .updateTable('connections')
            .set({ [column]: value })
            .where('id', '=', id)
            .executeTakeFirst();
        }
      });
    }
  }
}

/**
 * A prototype of batched rotation (not the shipped code): the same keyset walk and re-seal as
 * rotateKeys, but one compare-and-swap UPDATE per batch, `with v(id, old, next) as (values …)
 * update … from v`, which both PostgreSQL and SQLite (≥ 3.33) accept. Returns values swapped.
 */
async function rotateBatched(store: Store, keyring: Keyring, sealer: Sealer): Promise<number> {
  const prefix = `v1.${keyring.activeKeyId}.`;
  let swapped = 0;
  for (const column of TOKEN_COLUMNS) {
    let after: string | null = null;
    for (;;) {
      let q = store.db
        .selectFrom('connections')
        .select(['id', sql<string>`${sql.ref(column)}`.as('value')])
        .where(column, 'is not', null)
        .where(sql<boolean>`substr(${sql.ref(column)}, 1, ${prefix.length}) <> ${prefix}`)
        .orderBy('id')
        .limit(BATCH);
      if (after !== null) q = q.where('id', '>', after);
      const rows = await q.execute();
      if (rows.length === 0) break;
      after = rows[rows.length - 1]!.id;
      const values = rows.map((row) => {
        const ctx = { table: 'connections', rowId: row.id, field: column };
        return sql`(${row.id}, ${row.value}, ${sealer.seal(sealer.open(row.value, ctx), ctx)})`;
      });
      const result = await sql`with v(id, old, next) as (values ${sql.join(values)})
        update connections set ${sql.ref(column)} = v.next from v
        where connections.id = v.id and ${sql.ref(`connections.${column}`)} = v.old`.execute(store.db);
      swapped += Number(result.numAffectedRows ?? 0);
    }
  }
  return swapped;
}

/** open under k1 + seal under k2 of `values` values in process: what rotation spends on crypto. */
function cryptoOnly(sealer: Sealer, k1Sealer: Sealer, rows: number): number {
  const plain = tokenPlaintexts();
  const cases = TOKEN_COLUMNS.map((field) => {
    const ctx = { table: 'connections', rowId: randomUUID(), field };
    return { ctx, sealed: k1Sealer.seal(plain[field], ctx) };
  });
  const cpu = process.cpuUsage();
  for (let i = 0; i < rows; i++) {
    for (const c of cases) sink += sealer.seal(sealer.open(c.sealed, c.ctx), c.ctx).length;
  }
  return cpuMs(cpu);
}

const progress = (text: string): void => {
  process.stderr.write(`  rotation: ${text}\n`);
};

/**
 * Key-rotation throughput on one engine, in a database of its own (dropped at the end): seeds
 * `rows` connections sealed under k1, times rotateKeys to a keyring with k2 active (k1 kept), then
 * a prototype of batched rotation (k2 → k3) and, last, the plain-UPDATE baseline.
 */
export async function benchRotation(kind: DatabaseKind, rows: number): Promise<RotationBenchResult> {
  const keys = { k1: generateKey(), k2: generateKey(), k3: generateKey() };
  const v1 = sealerFor('k1', { k1: keys.k1 });
  const v2 = sealerFor('k2', { k2: keys.k2, k1: keys.k1 });
  const v3 = sealerFor('k3', { k3: keys.k3, k2: keys.k2, k1: keys.k1 });
  const database = await createTestDatabase(kind);
  const store = openStore(database.url);
  try {
    await migrateToLatest(store);
    progress(`${kind}: seeding ${rows} rows`);
    const seed = await timed(() => seedConnections(store, v1.sealer, rows));
    await settle(store);
    const staleBefore = await countStaleValues(store, v2.keyring);
    progress(`${kind}: rotateKeys`);
    let rotated = 0;
    const rotate = await timed(async () => {
      const r = await rotateKeys(store, v2.keyring, v2.sealer);
      rotated = r.rotated;
      if (r.failed.length > 0 || r.raced > 0)
        throw new Error(`rotation: ${r.failed.length} failed, ${r.raced} raced`);
    });
    const staleAfter = await countStaleValues(store, v2.keyring);
    if (rotated !== rows * TOKEN_COLUMNS.length) throw new Error(`rotateKeys re-sealed ${rotated} values`);
    const cryptoCpuMs = cryptoOnly(v2.sealer, v1.sealer, rows);

    await settle(store);
    progress(`${kind}: batched prototype`);
    let swapped = 0;
    const batched = await timed(async () => {
      swapped = await rotateBatched(store, v3.keyring, v3.sealer);
    });
    const batchedStaleAfter = await countStaleValues(store, v3.keyring);
    if (swapped !== rows * TOKEN_COLUMNS.length)
      throw new Error(`batched rotation swapped ${swapped} values`);

    const ids = (await store.db.selectFrom('connections').select('id').orderBy('id').execute()).map(
      (r) => r.id,
    );
    await settle(store);
    progress(`${kind}: plain UPDATE baseline`);
    const baseline = await timed(() => plainUpdates(store, ids));
    return {
      kind,
      rows,
      values: rows * TOKEN_COLUMNS.length,
      seedMs: seed.ms,
      staleBefore,
      staleAfter,
      rotateMs: rotate.ms,
      rotateCpuMs: rotate.cpuMs,
      baselineMs: baseline.ms,
      baselineCpuMs: baseline.cpuMs,
      cryptoCpuMs,
      batchedMs: batched.ms,
      batchedStaleAfter,
    };
  } finally {
    await store.close();
    await database.drop();
  }
}

/** Markdown tables of {@link benchRotation} results: throughput against the baseline, then where the time goes. */
export function rotationTable(results: RotationBenchResult[]): string {
  const int = (value: number) => Math.round(value).toLocaleString('en-US');
  const s = (ms: number) => (ms / 1000).toFixed(1);
  const perSec = (count: number, ms: number) => int((count * 1000) / ms);
  const throughput = [
    '| database | rows | seed (insert, 500/tx) s | stale before → after | rotateKeys s | rotation rows/s | rotation values/s | baseline s | baseline rows/s | rotation/baseline time |',
    '|---|---:|---:|---|---:|---:|---:|---:|---:|---:|',
    ...results.map(
      (r) =>
        `| ${r.kind} | ${int(r.rows)} | ${s(r.seedMs)} | ${int(r.staleBefore)} → ${int(r.staleAfter)} | ${s(r.rotateMs)} | ${perSec(r.rows, r.rotateMs)} | ${perSec(r.values, r.rotateMs)} | ${s(r.baselineMs)} | ${perSec(r.rows, r.baselineMs)} | ${(r.rotateMs / r.baselineMs).toFixed(2)}× |`,
    ),
  ];
  const breakdown = [
    '| database | rotateKeys wall s | rotateKeys node CPU s | baseline node CPU s | crypto only (open+seal) CPU s | crypto share of rotateKeys wall | batched prototype s | batched rows/s | stale after | rotateKeys/batched time |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...results.map(
      (r) =>
        `| ${r.kind} | ${s(r.rotateMs)} | ${s(r.rotateCpuMs)} | ${s(r.baselineCpuMs)} | ${s(r.cryptoCpuMs)} | ${((100 * r.cryptoCpuMs) / r.rotateMs).toFixed(0)}% | ${s(r.batchedMs)} | ${perSec(r.rows, r.batchedMs)} | ${int(r.batchedStaleAfter)} | ${(r.rotateMs / r.batchedMs).toFixed(2)}× |`,
    ),
  ];
  return [
    `Each row: ${int(results[0]?.rows ?? 0)} connections × ${TOKEN_COLUMNS.length} sealed values; rotateKeys k1 → k2 with its default batch (500).`,
    `Baseline: the same ${int(results[0]?.values ?? 0)} one-column UPDATEs by primary key (one per value, 500 per transaction) with no crypto, no SELECT, no compare-and-swap.`,
    '',
    ...throughput,
    '',
    'Where the time goes. node CPU includes SQLite itself (in process), not the PostgreSQL server. Batched prototype (bench only, k2 → k3): the same walk and re-seal, one `with v(id, old, next) as (values …) update … from v` compare-and-swap per 500 values.',
    '',
    ...breakdown,
  ].join('\n');
}

type SectionName = 'seal' | 'rotation';

/** Benchmark sections, run in order; `--section` picks one. */
const sections: Array<{ name: SectionName; title: string; run: (options: BenchOptions) => Promise<string> }> =
  [
    {
      name: 'seal',
      title: `Seal/open overhead (target ours/bare ≤ ${SEAL_OPEN_TARGET_RATIO.toFixed(2)}×)`,
      run: async (options) =>
        `${options.rounds} interleaved rounds, ${options.durationMs} ms per case; process CPU ns/op and ours/bare ` +
        `are medians over rounds (ratio paired per round)\n\n${sealOpenTable(await benchSealOpen(options))}`,
    },
    {
      name: 'rotation',
      title: 'Key-rotation throughput',
      run: async (options) => {
        const results: RotationBenchResult[] = [];
        for (const kind of ['sqlite', 'postgres'] as const)
          results.push(await benchRotation(kind, options.rows ?? 100_000));
        return rotationTable(results);
      },
    },
  ];

/** `--name value` from the command line, or the fallback. */
function argument(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : (process.argv[i + 1] ?? fallback);
}

async function main(): Promise<void> {
  const section = argument('section', 'all');
  if (section !== 'all' && !sections.some((s) => s.name === section)) {
    throw new Error('--section must be seal, rotation or all');
  }
  const rows = Number(argument('rows', '100000'));
  if (!Number.isInteger(rows) || rows <= 0) throw new Error('--rows must be a positive integer');
  const options: BenchOptions = { durationMs: 1500, rounds: 10, warmupMs: 200, rows };
  const model = cpus()[0]?.model.replace(/\s+/g, ' ').trim() ?? 'unknown CPU';
  process.stdout.write(`nproc ${cpus().length} (${model}), node ${process.version}\n`);
  for (const s of sections) {
    if (section !== 'all' && s.name !== section) continue;
    process.stdout.write(`\n## ${s.title}\n\n${await s.run(options)}\n`);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  await main();
}
