// Benchmark: a build-closure SBOM of an n-derivation graph (default 10,000), beside
// `nix show-derivation -r` and `nix-store -qR` on the same graph, with peak memory.
//   node dist/bench/sbom-graph.js [--n 10000] [--runtime-n 2000]
import { execFileSync, spawnSync } from "node:child_process";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { benchHome, derivationShowArgs, ROOT, GRAPH } from "./common.js";

const { values } = parseArgs({
  options: {
    n: { type: "string", default: "10000" },
    "runtime-n": { type: "string", default: "2000" },
  },
});

const { env } = benchHome("sbom");

/** Wall seconds (best of `runs`) and peak RSS in MiB (GNU time), of one command. */
function measure(runs: number, cmd: string, args: string[]): { s: number; mib: number } {
  let best = { s: Infinity, mib: 0 };
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    const r = spawnSync("/usr/bin/time", ["-f", "%M", cmd, ...args], {
      env,
      encoding: "utf8",
      maxBuffer: 1 << 30,
      stdio: ["ignore", "ignore", "pipe"],
    });
    if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr}`);
    const out = r.stderr;
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    const kib = Number(out.trim().split("\n").at(-1));
    if (s < best.s) best = { s, mib: kib / 1024 };
  }
  return best;
}

function row(what: string, m: { s: number; mib: number }, base?: number): void {
  const ratio = base ? `   ${(m.s / base).toFixed(2)}x` : "";
  console.log(
    `  ${what.padEnd(50)} ${m.s.toFixed(3).padStart(7)} s ${m.mib.toFixed(0).padStart(5)} MiB${ratio}`,
  );
}

const provenix = [join(ROOT, "bin", "provenix.js")];
const seed = String(Date.now() % 1_000_000_000);

const n = values.n;
console.error(`instantiating a ${n}-derivation graph...`);
const top = execFileSync("nix-instantiate", [GRAPH, "--arg", "n", n, "--arg", "seed", seed], {
  env,
  encoding: "utf8",
}).trim();
const showDrv = measure(3, "nix", [...derivationShowArgs(), "-r", top]);
const qR = measure(3, "nix-store", ["--query", "--requisites", top]);
console.log(`\nbuild-closure SBOM of ${n} derivations (best of 3; peak RSS)`);
row("nix show-derivation -r <top.drv>", showDrv);
row("nix-store -qR <top.drv>", qR);
for (const format of ["cyclonedx", "spdx"]) {
  const m = measure(3, process.execPath, [
    ...provenix,
    "sbom",
    "--closure",
    "build",
    "--format",
    format,
    top,
  ]);
  row(`provenix sbom --closure build --format ${format}`, m, showDrv.s);
  console.log(`  ${"".padEnd(50)} ${(m.s / qR.s).toFixed(2)}x nix-store -qR`);
}

const rn = values["runtime-n"];
console.error(`building a ${rn}-derivation graph for the runtime closure...`);
const rtop = execFileSync(
  "nix-build",
  [GRAPH, "--arg", "n", rn, "--arg", "seed", seed, "--no-out-link", "-j", "4"],
  {
    env,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "ignore"],
  },
).trim();
const rq = measure(3, "nix-store", ["--query", "--requisites", rtop]);
const rpi = measure(3, "nix", ["path-info", "-r", "--json", rtop]);
console.log(`\nruntime-closure SBOM of a ${rn}-derivation graph's output`);
row("nix-store -qR <top output>", rq);
row("nix path-info -r --json <top output>", rpi);
const rs = measure(3, process.execPath, [...provenix, "sbom", rtop]);
row("provenix sbom (cyclonedx, runtime)", rs, rpi.s);
