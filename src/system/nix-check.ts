import { execFile } from "node:child_process";
import { existsSync, lstatSync, rmSync } from "node:fs";
import { NixError } from "../nix/index.js";
import { nixErrorLine } from "./exec.js";

export const CHECK_SUFFIX = ".check";

export interface CheckRun {
  /** Nix found that an output differs from the stored copy ("may not be deterministic"). */
  readonly differs: boolean;
  /** Output name -> the `<path>.check` copy this run left (only for outputs that differ). */
  readonly checkPaths: ReadonlyMap<string, string>;
}

function identity(p: string): string | undefined {
  try {
    const st = lstatSync(p);
    return `${st.ino}:${st.ctimeMs}`;
  } catch {
    return undefined;
  }
}

/**
 * Rebuild a derivation whose outputs are valid, with Nix's `--check`: Nix builds
 * it again and compares each output's NAR hash with the stored one. With
 * `run-diff-hook` on (and no diff hook configured), Nix keeps the differing
 * rebuild at `<path>.check` without keeping the build directory.
 */
export async function checkRebuild(
  drvPath: string,
  outputs: ReadonlyMap<string, string>,
): Promise<CheckRun> {
  // A `.check` from an earlier run must not pass for this run's result.
  const before = new Map<string, string | undefined>();
  for (const path of outputs.values()) {
    const check = path + CHECK_SUFFIX;
    if (existsSync(check)) {
      try {
        rmSync(check, { recursive: true, force: true });
      } catch {
        // Not ours to delete (a multi-user store): tell it apart by inode and ctime below.
      }
    }
    before.set(check, identity(check));
  }
  const { code, stderr } = await new Promise<{ code: number; stderr: string }>((resolve, reject) =>
    execFile(
      "nix-store",
      ["--realise", "--check", "--option", "run-diff-hook", "true", drvPath],
      { encoding: "utf8", maxBuffer: 1 << 28 },
      (error, _stdout, stderr) => {
        const c = (error as NodeJS.ErrnoException | null)?.code;
        if (c === "ENOENT") {
          reject(
            new NixError(
              "NIX_NOT_INSTALLED",
              "'nix-store' was not found on PATH; install Nix (Debian: apt-get install nix-bin)",
            ),
          );
        } else resolve({ code: error ? (typeof c === "number" ? c : 1) : 0, stderr });
      },
    ),
  );
  const differs = code !== 0 && /may not be deterministic/.test(stderr);
  if (code !== 0 && !differs) {
    throw new NixError(
      "NIX_COMMAND_FAILED",
      `rebuild of ${drvPath} failed: ${nixErrorLine(stderr).replace(/^error: /, "")}`,
    );
  }
  const checkPaths = new Map<string, string>();
  for (const [name, path] of outputs) {
    const check = path + CHECK_SUFFIX;
    const now = identity(check);
    if (now !== undefined && now !== before.get(check)) checkPaths.set(name, check);
  }
  return { differs, checkPaths };
}
