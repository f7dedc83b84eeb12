#!/usr/bin/env node
// Keeps the import direction honest: the pure domain folders import no I/O
// (fs, processes, network, databases) and nothing from the layers above them.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const PURE = [
  "nix",
  "attest",
  "sign",
  "verify",
  "sbom",
  "chains",
  "assess",
  "repro",
  "policy",
  "oci",
  "cache",
  "vulns",
];
const FORBIDDEN_MODULES =
  /^(node:)?(fs|fs\/promises|child_process|net|http|https|http2|dgram|dns|tls|worker_threads|cluster)$|^better-sqlite3$/;
const FORBIDDEN_LAYERS = /^\.\.\/(system|store|cli|app)\//;

const root = new URL("../src/", import.meta.url).pathname;
const problems = [];
for (const folder of PURE) {
  for (const file of readdirSync(join(root, folder), { recursive: true })) {
    if (!String(file).endsWith(".ts")) continue;
    const path = join(root, folder, String(file));
    const text = readFileSync(path, "utf8");
    for (const m of text.matchAll(
      /(?:import|export)[^"';]*?from\s+["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g,
    )) {
      const spec = m[1] ?? m[2];
      if (FORBIDDEN_MODULES.test(spec) || FORBIDDEN_LAYERS.test(spec)) {
        problems.push(`src/${folder}/${file}: imports '${spec}', but src/${folder} is pure`);
      }
    }
  }
}
if (problems.length > 0) {
  console.error(problems.join("\n"));
  process.exit(1);
}
console.log(`import check: ${PURE.map((f) => `src/${f}`).join(", ")} import no I/O`);
