// What every benchmark sets up: where the project is, and a private home in which
// Nix uses no substituters (no build waits on an unreachable cache) and provenix
// has its own config and store.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const GRAPH = join(ROOT, "..", "shared", "bench", "graph.nix");
export const BIN = join(ROOT, "bin", "provenix.js");

export function benchHome(name: string): { work: string; env: NodeJS.ProcessEnv } {
  const work = mkdtempSync(join(tmpdir(), `provenix-bench-${name}-`));
  writeFileSync(
    join(work, "nix.conf"),
    "substituters =\nsandbox = false\nexperimental-features = nix-command\n",
  );
  return {
    work,
    env: {
      ...process.env,
      NIX_CONF_DIR: work,
      XDG_CONFIG_HOME: join(work, "config"),
      XDG_DATA_HOME: join(work, "data"),
    },
  };
}
