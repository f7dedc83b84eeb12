// Benchmark: what `provenix rebuild` costs over a bare `nix-store --realise --check`
// of the same derivation, in the same run, alternating the two. Cases: a trivial
// output, a large reproducible output, and a large unreproducible one (where
// provenix also hashes the rebuild, lists the differing files and, unless
// disabled, runs diffoscope).
//   node dist/bench/rebuild.js [--mb 100] [--runs 5]
import { spawnSync } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { benchHome, BIN } from "./common.js";

const { values } = parseArgs({
  options: { mb: { type: "string", default: "100" }, runs: { type: "string", default: "5" } },
});
const mb = Number(values.mb);
const runs = Number(values.runs);

const { work, env } = benchHome("rebuild");
const salt = String(Date.now());
const expr = join(work, "bench.nix");
writeFileSync(
  expr,
  `let mk = name: script: derivation { inherit name; salt = "${salt}"; system = builtins.currentSystem;
  builder = "/bin/sh"; PATH = "/usr/bin:/bin"; args = [ "-c" script ]; };
in {
  trivial = mk "trivial" "echo hello > $out";
  large = mk "large" "mkdir $out; head -c ${mb * 1048576} /dev/zero > $out/data; echo ok > $out/small";
  largeVarying = mk "large-varying" "mkdir $out; head -c ${mb * 1048576} /dev/zero > $out/data; date +%s%N > $out/stamp";
}
`,
);

function sh(cmd: string, args: string[], okCodes = [0]): void {
  const r = spawnSync(cmd, args, { env, encoding: "utf8", maxBuffer: 1 << 28 });
  if (!okCodes.includes(r.status ?? -1)) {
    throw new Error(`${cmd} ${args.join(" ")}: exit ${r.status}: ${r.stderr}`);
  }
}

function seconds(f: () => void): number {
  const t0 = process.hrtime.bigint();
  f();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
};

sh(process.execPath, [BIN, "keygen"]);
console.log(`rebuild overhead: ${runs} alternating runs each, medians; output size ${mb} MB`);
for (const [attr, varying] of [
  ["trivial", false],
  ["large", false],
  ["largeVarying", true],
] as const) {
  const drv = spawnSync("nix-instantiate", [expr, "-A", attr], {
    env,
    encoding: "utf8",
  }).stdout.trim();
  sh("nix-store", ["--realise", drv]);
  const okCodes = varying ? [0, 104] : [0];
  const nix: number[] = [];
  const pvx: number[] = [];
  const pvxFull: number[] = [];
  const out = spawnSync("nix-store", ["-q", "--outputs", drv], {
    env,
    encoding: "utf8",
  }).stdout.trim();
  for (let i = 0; i < runs; i++) {
    // Nix keeps a differing rebuild only when asked; provenix asks the same way.
    rmSync(out + ".check", { recursive: true, force: true });
    nix.push(
      seconds(() =>
        sh(
          "nix-store",
          ["--realise", "--check", "--option", "run-diff-hook", "true", drv],
          okCodes,
        ),
      ),
    );
    const pOk = varying ? [0, 1] : [0];
    pvx.push(
      seconds(() => sh(process.execPath, [BIN, "rebuild", "--quiet", "--no-diffoscope", drv], pOk)),
    );
    if (varying)
      pvxFull.push(seconds(() => sh(process.execPath, [BIN, "rebuild", "--quiet", drv], pOk)));
  }
  const n = median(nix);
  const p = median(pvx);
  const line = `  ${attr.padEnd(13)} nix-store --check ${n.toFixed(3)} s   provenix rebuild ${p.toFixed(3)} s   ratio ${(p / n).toFixed(2)}x`;
  console.log(
    varying
      ? `${line}   with diffoscope ${median(pvxFull).toFixed(3)} s (${(median(pvxFull) / n).toFixed(2)}x)`
      : line,
  );
}
rmSync(work, { recursive: true, force: true });
