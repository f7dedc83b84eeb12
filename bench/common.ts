// What every benchmark sets up: where the project is, and a private home in which
// Nix uses no substituters (no build waits on an unreachable cache) and provenix
// has its own config and store.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
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

/**
 * The `nix` arguments that show derivations as JSON on this Nix: `derivation show`
 * (2.15 and later), else `show-derivation` (2.8, where it is the only form).
 */
export function derivationShowArgs(): string[] {
  const version = execFileSync("nix", ["--version"], { encoding: "utf8" });
  const [major = 0, minor = 0] = (/(\d+)\.(\d+)/.exec(version) ?? []).slice(1).map(Number);
  return major > 2 || (major === 2 && minor >= 15) ? ["derivation", "show"] : ["show-derivation"];
}

/** Run a command in the benchmark's environment; its stdout, or an error with its stderr. */
export function shell(env: NodeJS.ProcessEnv): (cmd: string, args: string[]) => string {
  return (cmd, args) => {
    const r = spawnSync(cmd, args, { env, encoding: "utf8", maxBuffer: 1 << 30 });
    if (r.status !== 0) throw new Error(`${cmd} ${args.slice(0, 3).join(" ")}: ${r.stderr}`);
    return r.stdout;
  };
}

/** Wall time of one call, in seconds. */
export function seconds(f: () => void): number {
  const t0 = process.hrtime.bigint();
  f();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

/** The median wall time of `runs` calls, in seconds. */
export function median(runs: number, f: () => void): number {
  const xs = Array.from({ length: runs }, () => seconds(f)).sort((a, b) => a - b);
  return xs[Math.floor(xs.length / 2)] ?? NaN;
}

/**
 * Build a fresh n-derivation graph (a new seed: every build is new), keygen, and
 * attest every derivation of its build closure; the top output and the public key.
 */
export function buildAndAttestGraph(
  sh: (cmd: string, args: string[]) => string,
  work: string,
  n: number,
): { top: string; pub: string } {
  const seed = String(Math.floor(Math.random() * 1e9));
  const top = sh("nix-build", [
    GRAPH,
    ...["--arg", "n", String(n), "--arg", "seed", seed, "--no-out-link", "-j", "4"],
  ]).trim();
  const topDrv = sh("nix-store", ["-q", "--deriver", top]).trim();
  const drvs = sh("nix-store", ["-qR", topDrv])
    .split("\n")
    .filter((p) => p.endsWith(".drv"));
  sh(process.execPath, [BIN, "keygen"]);
  sh(process.execPath, [BIN, "attest", "--json", ...drvs]);
  const pub = readFileSync(join(work, "config", "provenix", "signing.pub"), "utf8").trim();
  return { top, pub };
}
