// Benchmark: attest every output of an n-derivation graph, and hash a large
// output, beside the Nix commands that do comparable work on the same data.
//   npm run bench -- [--n 2000] [--large-mb 1024]
// Prints times and ratios (provenix / Nix); absolute times vary between machines.
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { hashNar } from "../src/system/nar-dump.js";
import { NixCliStore } from "../src/system/nix-cli.js";
import { NixDbStore } from "../src/system/nix-db.js";
import { benchHome, derivationShowArgs, ROOT, GRAPH } from "./common.js";

const { values } = parseArgs({
  options: {
    n: { type: "string", default: "2000" },
    "large-mb": { type: "string", default: "1024" },
  },
});
const n = Number(values.n);
const largeMb = Number(values["large-mb"]);

const { work, env } = benchHome("attest");

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, {
    env,
    encoding: "utf8",
    maxBuffer: 1 << 30,
    stdio: ["ignore", "pipe", "inherit"],
  });
}

/** Best of `runs` wall times of an async function, in seconds. */
async function timeAsync(runs: number, f: () => Promise<unknown>): Promise<number> {
  let best = Infinity;
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    await f();
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return best;
}

/** Best of `runs` wall times, in seconds. */
function time(runs: number, f: () => void): number {
  let best = Infinity;
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    f();
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return best;
}

const row = (what: string, s: number, base?: number) =>
  console.log(
    `  ${what.padEnd(44)} ${s.toFixed(3).padStart(8)} s${base ? `   ${(s / base).toFixed(2)}x` : ""}`,
  );
const figure = (what: string, value: number, unit: string) =>
  console.log(`  ${what.padEnd(44)} ${value.toFixed(2).padStart(8)} ${unit}`);

// --- attest an n-derivation graph -------------------------------------------------
const seed = String(Date.now() % 1_000_000_000);
console.error(`building a ${n}-derivation graph (seed ${seed})...`);
const top = sh("nix-instantiate", [GRAPH, "--arg", "n", String(n), "--arg", "seed", seed]).trim();
sh("nix-store", ["--realise", top, "-j", "4"]);
const drvs = sh("nix-store", ["--query", "--requisites", top])
  .split("\n")
  .filter((l) => l.endsWith(".drv"));
const outputs = sh("nix-store", ["--query", "--outputs", ...drvs])
  .split("\n")
  .filter((l) => l !== "");
const topOut = sh("nix-store", ["--query", "--outputs", top]).trim();
const provenix = join(ROOT, "bin", "provenix.js");
sh(process.execPath, [provenix, "keygen"]);

const tQR = time(3, () => sh("nix-store", ["--query", "--requisites", top]));
const tPathInfo = time(3, () => sh("nix", ["path-info", "--json", ...outputs]));
const tPathInfoR = time(3, () => sh("nix", ["path-info", "-r", "--json", topOut]));
const tShowDrv = time(3, () => sh("nix", [...derivationShowArgs(), "-r", top]));
let stored = 0;
const tAttest = time(1, () => {
  const out = sh(process.execPath, [provenix, "attest", "--json", ...drvs]);
  stored = (JSON.parse(out) as unknown[]).length;
});
const tVerify = time(1, () =>
  sh(process.execPath, [provenix, "verify", "--json", "--no-nix-keys", ...outputs]),
);

console.log(
  `\nattest: ${drvs.length} derivations, ${outputs.length} outputs, ${stored} attestations signed and stored`,
);
row("nix-store --query --requisites <top.drv>", tQR);
row("nix show-derivation -r <top.drv>", tShowDrv);
row(`nix path-info --json <${outputs.length} outputs>`, tPathInfo);
row("nix path-info -r --json <top output>", tPathInfoR);
row("provenix attest <every .drv>  (vs path-info)", tAttest, tPathInfo);
row("  same, vs nix-store -qR", tAttest, tQR);
row("  same, vs nix show-derivation -r", tAttest, tShowDrv);
figure("  per attestation", (tAttest / drvs.length) * 1000, "ms");
row("provenix verify <every output> (rehash)", tVerify, tPathInfo);

// --- the two NixStore adapters, on the same paths ----------------------------------
process.env.NIX_CONF_DIR = work;
const cli = new NixCliStore();
const db = new NixDbStore();
const tCli = await timeAsync(3, () => cli.pathInfos(outputs));
const tDb = await timeAsync(3, () => db.pathInfos(outputs));
const tCliClosure = await timeAsync(3, () => cli.closure([top]));
const tDbClosure = await timeAsync(3, () => db.closure([top]));
db.close();
console.log(`\nstore queries: path-info of ${outputs.length} outputs, closure of the top .drv`);
row("NixCliStore.pathInfos (nix path-info)", tCli);
row("NixDbStore.pathInfos (read-only Nix db)", tDb, tCli);
row("NixCliStore.closure (nix-store -qR)", tCliClosure);
row("NixDbStore.closure (recursive SQL)", tDbClosure, tCliClosure);

// --- hash a large output -----------------------------------------------------------
if (largeMb > 0) {
  const files = 8000;
  const perFile = Math.floor((largeMb * 1024 * 1024) / files);
  const expr = `derivation { name = "large-${seed}"; system = builtins.currentSystem; builder = "/bin/sh"; PATH = "/usr/bin:/bin";
    args = [ "-c" "mkdir -p $out; head -c ${perFile} /dev/urandom > $out/seed; i=0; while [ $i -lt ${files} ]; do d=$out/d$((i % 64)); mkdir -p $d; ln $out/seed $d/f$i 2>/dev/null || cp $out/seed $d/f$i; i=$((i+1)); done" ]; }`;
  console.error(`building a ${largeMb} MB output...`);
  const large = sh("nix-build", ["--no-out-link", "-E", expr]).trim();
  // Hard links are not allowed across outputs by Nix's canonicalisation; the size is what NAR sees.
  const narSize =
    (JSON.parse(sh("nix", ["path-info", "--json", large])) as { narSize: number }[])[0]?.narSize ??
    0;
  const tNix = time(3, () => sh("nix", ["hash", "path", large]));
  let ours = "";
  const tOurs = time(3, () => (ours = hashNar(large).sha256));
  const theirs = sh("nix", ["hash", "path", "--base16", "--type", "sha256", large]).trim();
  if (ours !== theirs) throw new Error(`hash mismatch: ${ours} vs ${theirs}`);
  console.log(
    `\nhash: ${(narSize / 2 ** 20).toFixed(0)} MiB NAR, ${files + 1} files (page cache warm, best of 3)`,
  );
  row("nix hash path", tNix);
  row("provenix NAR sha256 (in-process)", tOurs, tNix);
  figure("  throughput", narSize / tOurs / 1e9, "GB/s");
}
