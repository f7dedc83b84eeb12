// Benchmark: the attestation store at a million rows. It attests a small real graph
// (real bundles, real sizes), then fills the store with `rows` attestations made
// from those bundles' bytes with other subjects, digests and derivations (the
// store keeps bytes and does not check signatures: these are for size and index
// shape, not for verifying), created over the past year. It measures the insert
// rate, the file size, lookups by subject path, digest and derivation (p50/p99),
// `show` and `status` beside `nix path-info` of the same path, and `gc`.
//   node dist/bench/store-million.js [--rows 1000000] [--lookups 10000]
import { randomBytes } from "node:crypto";
import { statSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import Database from "better-sqlite3";
import { AttestationStore } from "../src/store/index.js";
import { benchHome, BIN, buildAndAttestGraph, median, seconds, shell } from "./common.js";

const { values } = parseArgs({
  options: {
    rows: { type: "string", default: "1000000" },
    lookups: { type: "string", default: "10000" },
  },
});
const rows = Number(values.rows);
const lookups = Number(values.lookups);
const { work, env } = benchHome("store");
const sh = shell(env);
const provenix = (...args: string[]) => sh(process.execPath, [BIN, ...args]);

const { top } = buildAndAttestGraph(sh, work, 20);
const dbFile = join(work, "data", "provenix", "attestations.db");
const store = AttestationStore.open(dbFile);
const templates = store.find({});
const typical = templates.reduce((a, t) => a + t.bundle.length, 0) / templates.length;

const BASE32 = "0123456789abcdfghijklmnpqrsvwxyz";
const storePath = (name: string) =>
  `/nix/store/${Array.from(randomBytes(32), (b) => BASE32[b % 32]).join("")}-${name}`;

// Fill: batches of 10,000 in one transaction each, as the daemon's batch path writes.
const now = Date.now();
const year = 365 * 86_400_000;
const samples: { name: string; sha256: string; derivation: string }[] = [];
let bytes = 0;
const fill = seconds(() => {
  for (let i = 0; i < rows; i += 10_000) {
    store.transaction(() => {
      for (let j = i; j < Math.min(rows, i + 10_000); j++) {
        const t = templates[j % templates.length] as (typeof templates)[number];
        const name = storePath(`pkg${j}-1.0`);
        const sha256 = randomBytes(32).toString("hex");
        const derivation = storePath(`pkg${j}-1.0.drv`);
        // Other subject bytes in the same size: the bundle stays realistic in size.
        const bundle = Buffer.concat([t.bundle, Buffer.from(` ${j}`)]);
        bytes += bundle.length;
        store.put({
          bundle,
          payload: Buffer.from(`${name} ${sha256}`),
          keyid: t.keyid,
          predicateType: t.predicateType,
          builderId: t.builderId ?? "https://provenix.dev/builders/bench",
          derivation,
          subjects: [{ name, sha256 }],
        });
        if (j % Math.max(1, Math.floor(rows / lookups)) === 0)
          samples.push({ name, sha256, derivation });
      }
    });
  }
});
store.close();
// created_at over the past year, for gc: set after the fill, as time would have.
const spread = seconds(() => {
  const db = new Database(dbFile);
  db.prepare(`UPDATE attestations SET created_at = ? - (id * 2654435761 % ?) WHERE id > ?`).run(
    now,
    year,
    templates.length,
  );
  db.close();
});

const sizeMiB =
  (statSync(dbFile).size + (statSync(`${dbFile}-wal`, { throwIfNoEntry: false })?.size ?? 0)) /
  2 ** 20;

function percentiles(f: (i: number) => void): { p50: number; p99: number } {
  const xs: number[] = [];
  for (let i = 0; i < samples.length; i++) {
    const t0 = process.hrtime.bigint();
    f(i);
    xs.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  xs.sort((a, b) => a - b);
  const at = (q: number) => xs[Math.min(xs.length - 1, Math.floor(q * xs.length))] ?? NaN;
  return { p50: at(0.5), p99: at(0.99) };
}
const reader = AttestationStore.open(dbFile);
const sample = (i: number) => samples[i] as (typeof samples)[number];
const bySubject = percentiles((i) => reader.find({ subjectName: sample(i).name }));
const byDigest = percentiles((i) => reader.find({ subjectSha256: sample(i).sha256 }));
const byDerivation = percentiles((i) => reader.find({ derivation: sample(i).derivation }));
const total = reader.count();
reader.close();

const show = median(5, () => provenix("show", "--json", top));
const pathInfo = median(5, () => sh("nix", ["path-info", "--json", top]));
const status = median(5, () => provenix("status", "--json"));
let dry = "";
const gcDry = seconds(() => {
  dry = provenix("gc", "--json", "--dry-run", "--quiet", "--older-than", "180d");
});
const would = (JSON.parse(dry) as { removed: unknown[]; candidates: number }).removed.length;
let real = "";
const gc = seconds(() => {
  real = provenix("gc", "--quiet", "--older-than", "180d");
});
const after = AttestationStore.open(dbFile);
const left = after.count();
after.close();

const ms = (x: number) => `${x.toFixed(3)} ms`;
console.log(
  `\nattestation store at ${total} rows (typical real bundle ${Math.round(typical)} bytes)`,
);
console.log(
  `  fill                       ${fill.toFixed(1)} s  (${Math.round(rows / fill)} attestations/s, ${(bytes / 2 ** 20).toFixed(0)} MiB of bundles, batches of 10,000)`,
);
console.log(`  spread created_at          ${spread.toFixed(1)} s`);
console.log(`  file size                  ${sizeMiB.toFixed(0)} MiB`);
console.log(
  `  lookup by subject path     p50 ${ms(bySubject.p50)}  p99 ${ms(bySubject.p99)}  (${samples.length} lookups)`,
);
console.log(`  lookup by subject digest   p50 ${ms(byDigest.p50)}  p99 ${ms(byDigest.p99)}`);
console.log(
  `  lookup by derivation       p50 ${ms(byDerivation.p50)}  p99 ${ms(byDerivation.p99)}`,
);
console.log(
  `  provenix show --json       ${show.toFixed(3)} s  (nix path-info --json ${pathInfo.toFixed(3)} s; ratio ${(show / pathInfo).toFixed(2)}x)`,
);
console.log(`  provenix status --json     ${status.toFixed(3)} s`);
console.log(
  `  provenix gc --dry-run      ${gcDry.toFixed(1)} s  (${would} of the rows older than 180 days, subjects gone)`,
);
console.log(
  `  provenix gc                ${gc.toFixed(1)} s  (${real.trim().split("\n")[0]}); ${left} rows left`,
);
