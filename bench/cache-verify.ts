// Benchmark: provenance through a binary cache. An n-derivation graph is built,
// attested, copied to a cache by Nix (`nix copy --to file://`, signed) and served
// by nginx on 127.0.0.1 (WebDAV PUT); then
//   - `provenix publish --closure --to http://...` (first time, and again: idempotent),
//   - `provenix verify --from http://... --closure runtime` (and with --policy),
// beside `nix path-info -r --store http://...` of the same closure, which only
// reads the narinfos, and `nix store verify --no-contents -r --store http://...`,
// which also checks their signatures.
//   node dist/bench/cache-verify.js [--n 2000] [--runs 3]
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { nginxCache } from "../test/helpers/http-cache.js";
import {
  benchHome,
  BIN,
  buildAndAttestGraph,
  median as medianOf,
  seconds,
  shell,
} from "./common.js";

const { values } = parseArgs({
  options: { n: { type: "string", default: "2000" }, runs: { type: "string", default: "3" } },
});
const n = Number(values.n);
const runs = Number(values.runs);
const { work, env } = benchHome("cache");
const cleanups: (() => unknown)[] = [];

const sh = shell(env);
const median = (f: () => void) => medianOf(runs, f);

try {
  const { top, pub } = buildAndAttestGraph(sh, work, n);
  const sk = join(work, "cache.sk");
  sh("nix-store", ["--generate-binary-cache-key", "bench-cache-1", sk, join(work, "cache.pk")]);
  const cacheKey = readFileSync(join(work, "cache.pk"), "utf8").trim();
  const cacheDir = join(work, "cache");
  const copy = seconds(() =>
    sh("nix", ["copy", "--to", `file://${cacheDir}?secret-key=${sk}&compression=none`, top]),
  );
  const server = await nginxCache({ after: (f) => cleanups.push(f) }, cacheDir);
  const closureSize = sh("nix-store", ["-qR", top]).split("\n").filter(Boolean).length;
  const policy = join(work, "policy.yaml");
  writeFileSync(policy, `apiVersion: provenix.dev/policy/v1\nbuilders:\n  - keys: ["${pub}"]\n`);

  console.log(
    `attestations in a binary cache: ${n + 1}-derivation graph, ${closureSize} paths in the runtime closure, nginx on 127.0.0.1, median of ${runs}`,
  );
  console.log(`  nix copy --to file:// (NARs, narinfos)            ${copy.toFixed(2)} s`);
  const publish = ["publish", "--closure", "--to", server.url, top];
  const first = seconds(() => sh(process.execPath, [BIN, ...publish]));
  const again = median(() => sh(process.execPath, [BIN, ...publish]));
  console.log(
    `  provenix publish --closure (first, PUT)           ${first.toFixed(2)} s  ${(closureSize / first).toFixed(0)} paths/s  ratio to nix copy ${(first / copy).toFixed(2)}x`,
  );
  console.log(`  provenix publish --closure (again, nothing new)   ${again.toFixed(2)} s`);

  // Each run with an empty narinfo disk cache (~/.cache/nix), as provenix has none.
  let fresh = 0;
  const nix = median(() =>
    sh("env", [
      `XDG_CACHE_HOME=${join(work, `xdg-cache-${fresh++}`)}`,
      "nix",
      "path-info",
      "-r",
      "--store",
      server.url,
      top,
    ]),
  );
  console.log(
    `  nix path-info -r --store http:// (narinfos only)  ${nix.toFixed(2)} s  ${(closureSize / nix).toFixed(0)} paths/s`,
  );
  // Nix checking the narinfo signatures too (no NARs): the part of provenix's work Nix does.
  const nixSigs = median(() =>
    sh("env", [
      `XDG_CACHE_HOME=${join(work, `xdg-cache-${fresh++}`)}`,
      "nix",
      "store",
      "verify",
      "--no-contents",
      "-r",
      "--store",
      server.url,
      "--trusted-public-keys",
      cacheKey,
      top,
    ]),
  );
  console.log(
    `  nix store verify --no-contents -r --store http:// ${nixSigs.toFixed(2)} s  ${(closureSize / nixSigs).toFixed(0)} paths/s`,
  );
  const trust = ["--no-nix-keys", "--cache-key", cacheKey, "--trusted-key", pub];
  for (const [label, extra] of [
    ["verify --from --closure runtime          ", []],
    ["verify --from --closure runtime --policy ", ["--policy", policy]],
  ] as const) {
    const t = median(() =>
      sh(process.execPath, [
        BIN,
        "verify",
        "--from",
        server.url,
        "--closure",
        "runtime",
        ...trust,
        ...extra,
        top,
      ]),
    );
    console.log(
      `  provenix ${label}${t.toFixed(2)} s  ${(closureSize / t).toFixed(0)} paths/s  ratio to nix path-info ${(t / nix).toFixed(2)}x, to nix store verify ${(t / nixSigs).toFixed(2)}x`,
    );
  }
} finally {
  for (const f of cleanups) f();
}
