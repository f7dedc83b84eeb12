// Test helpers that run real Nix. Each test file calls useTestNix() first.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
export const FIXTURES = join(ROOT, "test", "fixtures");
export const BUILDS = join(FIXTURES, "builds.nix");
export const GRAPH = join(ROOT, "..", "shared", "bench", "graph.nix");

export function tempDir(prefix = "provenix-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

let configured = false;

/** Point Nix at a test nix.conf (no substituters: no waiting on an unreachable cache). */
export function useTestNix(): void {
  if (configured) return;
  const dir = tempDir("provenix-nixconf-");
  writeFileSync(
    join(dir, "nix.conf"),
    ["substituters =", "sandbox = false", "experimental-features = nix-command", ""].join("\n"),
  );
  process.env.NIX_CONF_DIR = dir;
  configured = true;
}

export function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): string {
  return execFileSync(cmd, args, {
    encoding: "utf8",
    env,
    maxBuffer: 1 << 30,
    stdio: ["ignore", "pipe", "pipe"],
  });
}

export function nixCmd(...args: string[]): string {
  return run("nix", ["--extra-experimental-features", "nix-command", ...args]);
}

/** Build attributes of test/fixtures/builds.nix; returns the output paths (all outputs). */
export function build(attr: string, salt = ""): string[] {
  const out = run("nix-build", [BUILDS, "-A", attr, "--no-out-link", "--argstr", "salt", salt]);
  return out.split("\n").filter((l) => l !== "");
}

export function instantiate(attr: string, salt = "", file = BUILDS): string {
  return run("nix-instantiate", [file, "-A", attr, "--argstr", "salt", salt]).trim();
}

/** All output paths of a derivation, by name, from `nix show-derivation`. */
export function drvOutputs(drvPath: string): Record<string, string> {
  const json = JSON.parse(nixCmd("show-derivation", drvPath)) as Record<
    string,
    { outputs: Record<string, { path: string }> }
  >;
  const d = json[drvPath];
  if (!d) throw new Error(`no derivation ${drvPath}`);
  return Object.fromEntries(Object.entries(d.outputs).map(([k, v]) => [k, v.path]));
}

export function writeNixFile(dir: string, name: string, text: string): string {
  mkdirSync(dir, { recursive: true });
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}
