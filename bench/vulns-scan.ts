// Benchmark: provenix vulns on a build closure of n derivations (graph.nix, only
// instantiated: a build closure needs no build) against a database of `records`
// OSV records, beside `nix-store -qR` of the same closure. Also the import time.
// The records are generated: names of the graph's packages and others, with
// ECOSYSTEM ranges, so that a tenth of the packages match; accuracy is tested
// elsewhere (test/vulns), this measures time and memory.
//   node dist/bench/vulns-scan.js [--n 10000] [--records 100000]
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { benchHome, BIN, GRAPH, seconds, shell } from "./common.js";

const { values } = parseArgs({
  options: {
    n: { type: "string", default: "10000" },
    records: { type: "string", default: "100000" },
  },
});
const n = Number(values.n);
const records = Number(values.records);
const { work, env } = benchHome("vulns");
const sh = shell(env);

const dir = join(work, "records");
const gen = seconds(() => {
  for (let i = 0; i < records; i++) {
    const sub = join(dir, String(Math.floor(i / 1000)));
    if (i % 1000 === 0) mkdirSync(sub, { recursive: true });
    // Every tenth record names a package of the graph; the rest name others.
    const name = i % 10 === 0 ? `pkg${(i / 10) % n}` : `other${i}`;
    writeFileSync(
      join(sub, `BENCH-${i}.json`),
      JSON.stringify({
        schema_version: "1.6.0",
        id: `BENCH-${i}`,
        modified: "2026-01-01T00:00:00Z",
        aliases: [`CVE-2099-${10000 + i}`],
        summary: `synthetic advisory ${i}`,
        severity: [{ type: "CVSS_V3", score: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H" }],
        affected: [
          {
            package: { ecosystem: "Nix", name },
            ranges: [{ type: "ECOSYSTEM", events: [{ introduced: "0" }, { fixed: "1.4" }] }],
          },
        ],
      }),
    );
  }
});

const db = join(work, "vulns.db");
let imported = "";
const importTime = seconds(() => {
  imported = sh(process.execPath, [BIN, "vulns", "update", "--db", db, "--from", dir]);
});

const seed = String(Math.floor(Math.random() * 1e9));
let top = "";
const instantiate = seconds(() => {
  top = sh("nix-instantiate", [GRAPH, "--arg", "n", String(n), "--arg", "seed", seed]).trim();
});
let closure = 0;
const nix = seconds(() => {
  closure = sh("nix-store", ["-qR", top]).split("\n").filter(Boolean).length;
});
let findings = 0;
const scan = seconds(() => {
  // Exit 1 is the answer "affected findings", not a failure.
  const r = spawnSync(
    "/usr/bin/time",
    [
      "-f",
      "peak-rss-kib %M",
      "-o",
      join(work, "time.txt"),
      process.execPath,
      BIN,
      "vulns",
      "--json",
      "--db",
      db,
      "--closure",
      "build",
      top,
    ],
    { env, encoding: "utf8", maxBuffer: 1 << 30 },
  );
  if (r.status !== 0 && r.status !== 1) throw new Error(`provenix vulns: ${r.stderr}`);
  findings =
    (JSON.parse(r.stdout) as { scans: { findings: unknown[] }[] }).scans[0]?.findings.length ?? 0;
});
const peakKiB = Number(/peak-rss-kib (\d+)/.exec(sh("cat", [join(work, "time.txt")]))?.[1] ?? 0);

console.log(
  `vulnerability scan: build closure of a ${n + 1}-derivation graph (${closure} store paths), ${records} OSV records`,
);
console.log(`  generate records                     ${gen.toFixed(2)} s`);
console.log(
  `  provenix vulns update                ${importTime.toFixed(2)} s  (${imported.trim()})`,
);
console.log(`  nix-instantiate (the graph)          ${instantiate.toFixed(2)} s`);
console.log(`  nix-store -qR <top.drv>              ${nix.toFixed(2)} s`);
console.log(
  `  provenix vulns --closure build       ${scan.toFixed(2)} s  ${findings} findings, peak RSS ${(peakKiB / 1024).toFixed(0)} MiB, ratio to nix-store -qR ${(scan / nix).toFixed(2)}x`,
);
