// Test helpers that run real Nix. Each test file calls useTestNix() first.
import { execFileSync } from "node:child_process";
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  realpathSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  parseDerivationJson,
  parsePathInfoJson,
  type DerivationJson,
  type PathInfo,
} from "../../src/nix/index.js";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
export const FIXTURES = join(ROOT, "test", "fixtures");
export const BUILDS = join(FIXTURES, "builds.nix");
export const GRAPH = join(ROOT, "..", "shared", "bench", "graph.nix");

export function tempDir(prefix = "provenix-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

let configured = false;

/**
 * What `/bin/sh` builders need in the sandbox: /bin, /usr, /lib and /lib64 (if it is
 * there). Where they are merged-/usr symlinks (Debian 12 and trixie), /lib and /lib64
 * are bound as their targets (`/lib=/usr/lib`: Nix 2.26 cannot set up a symlink
 * there), and of /bin only `/bin/sh` and `/bin/bash`, the fixtures' builders (their
 * PATH has /usr/bin). Never `/bin=/usr/bin`:
 * Nix would then create its own `/bin/sh` binding (trixie's default sandbox-paths
 * has one) through that bind mount, truncating the host's /usr/bin/sh.
 */
export function sandboxPaths(): string {
  const symlink = (p: string) => {
    try {
      return lstatSync(p).isSymbolicLink();
    } catch {
      return false;
    }
  };
  const merged = symlink("/bin");
  return [
    ...(merged
      ? ["sh", "bash"]
          .filter((b) => existsSync(`/bin/${b}`))
          .map((b) => `/bin/${b}=${realpathSync(`/bin/${b}`)}`)
      : ["/bin"]),
    "/usr",
    symlink("/lib") ? `/lib=${realpathSync("/lib")}` : "/lib",
    symlink("/lib64") ? `/lib64=${realpathSync("/lib64")}?` : "/lib64?",
  ].join(" ");
}

/**
 * The sandbox as the tests' builds get it: on, with no fallback (a machine that
 * cannot sandbox fails the tests rather than passing them unsandboxed), and with what
 * `/bin/sh` builders use bound in (the fixtures need no nixpkgs). With the fallback
 * on, provenix would also run a probe build at each attestation (see
 * test/attest/sandbox-observed.test.ts).
 */
export const TEST_SANDBOX = [
  "sandbox = true",
  "sandbox-fallback = false",
  `extra-sandbox-paths = ${sandboxPaths()}`,
] as const;

/** Point Nix at a test nix.conf (no substituters: no waiting on an unreachable cache). */
export function useTestNix(): void {
  if (configured) return;
  const dir = tempDir("provenix-nixconf-");
  writeFileSync(
    join(dir, "nix.conf"),
    ["substituters =", ...TEST_SANDBOX, "experimental-features = nix-command", ""].join("\n"),
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

/** `nix config show --json` (2.20 and later), else `nix show-config --json` (2.8). */
export function nixConfigShowJson(
  env: NodeJS.ProcessEnv = process.env,
): Record<string, { value: unknown }> {
  const features = ["--extra-experimental-features", "nix-command"];
  let out: string;
  try {
    out = run("nix", [...features, "config", "show", "--json"], env);
  } catch {
    out = run("nix", [...features, "show-config", "--json"], env);
  }
  return JSON.parse(out) as Record<string, { value: unknown }>;
}

/** `nix path-info --json` of one valid path, read in whatever shape this Nix prints. */
export function nixPathInfo(path: string): PathInfo {
  const info = parsePathInfoJson(JSON.parse(nixCmd("path-info", "--json", path)), "/nix/store").get(
    path,
  );
  if (!info) throw new Error(`nix path-info knows no valid ${path}`);
  return info;
}

let derivationShow: string[] | undefined;

/**
 * Nix's own JSON of derivations, read in any shape Nix prints: `nix derivation show`
 * (2.15 and later), else `nix show-derivation` (2.8, where it is the only form).
 */
export function showDerivations(paths: string[], extraFeatures = ""): Map<string, DerivationJson> {
  const features = ["--extra-experimental-features", `nix-command ${extraFeatures}`.trim()];
  let out: string | undefined;
  for (const cmd of derivationShow
    ? [derivationShow]
    : [["derivation", "show"], ["show-derivation"]]) {
    try {
      out = run("nix", [...features, ...cmd, ...paths]);
      derivationShow = cmd;
      break;
    } catch (e) {
      if (derivationShow) throw e;
    }
  }
  if (out === undefined)
    throw new Error("neither nix derivation show nor nix show-derivation works");
  return parseDerivationJson(JSON.parse(out), "/nix/store");
}

/** All output paths of a derivation, by name, from Nix's JSON of it. */
export function drvOutputs(drvPath: string): Record<string, string> {
  const d = showDerivations([drvPath]).get(drvPath);
  if (!d) throw new Error(`no derivation ${drvPath}`);
  return Object.fromEntries(Object.entries(d.outputs).map(([k, v]) => [k, v.path as string]));
}

export function writeNixFile(dir: string, name: string, text: string): string {
  mkdirSync(dir, { recursive: true });
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}
