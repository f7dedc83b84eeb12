// Benchmark: `provenix verify --policy` over the runtime and build closures of an
// n-derivation graph (signatures and policy, with and without re-hashing NARs),
// beside `nix store verify -r` of the same closure (Nix re-hashing the contents).
//   node dist/bench/verify-closure.js [--n 2000] [--runs 3]
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { benchHome, BIN, buildAndAttestGraph, median, shell } from "./common.js";

const { values } = parseArgs({
  options: { n: { type: "string", default: "2000" }, runs: { type: "string", default: "3" } },
});
const n = Number(values.n);
const runs = Number(values.runs);

const { work, env } = benchHome("verify");

const sh = shell(env);

const { top, pub } = buildAndAttestGraph(sh, work, n);
const policy = join(work, "policy.yaml");
writeFileSync(policy, `apiVersion: provenix.dev/policy/v1\nbuilders:\n  - keys: ["${pub}"]\n`);
const closureSize = sh("nix-store", ["-qR", top]).split("\n").filter(Boolean).length;

console.log(
  `verify a closure against a policy: ${n + 1}-derivation graph, ${closureSize} paths in the runtime closure, median of ${runs}`,
);
const nix = median(runs, () => sh("nix", ["store", "verify", "-r", "--no-trust", top]));
console.log(
  `  nix store verify -r --no-trust (rehash)       ${nix.toFixed(2)} s  ${(closureSize / nix).toFixed(0)} paths/s`,
);
for (const closure of ["runtime", "build"]) {
  for (const rehash of [true, false]) {
    const t = median(runs, () =>
      sh(process.execPath, [
        BIN,
        "verify",
        "--policy",
        policy,
        "--closure",
        closure,
        ...(rehash ? [] : ["--no-rehash"]),
        top,
      ]),
    );
    console.log(
      `  provenix verify --policy --closure ${closure.padEnd(7)} ${rehash ? "(rehash)   " : "(no rehash)"} ${t.toFixed(2)} s  ${(closureSize / t).toFixed(0)} paths/s  ratio to nix ${(t / nix).toFixed(2)}x`,
    );
  }
}
