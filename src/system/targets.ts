import { existsSync, lstatSync, realpathSync, statSync } from "node:fs";
import { resolve } from "node:path";
import type { FlakeSource } from "../attest/index.js";
import {
  isDerivationPath,
  NixError,
  parseNixHash,
  parseStorePath,
  toStorePath,
  type NixStore,
} from "../nix/index.js";
import { runNix } from "./exec.js";

/** What a command-line argument names. */
export type Target =
  | { kind: "output"; path: string }
  | { kind: "derivation"; drvPath: string }
  | { kind: "bundle"; file: string }
  | { kind: "installable"; installable: string };

/**
 * Classify an argument: a store path or a symlink into the store (./result), a
 * `.drv`, a bundle file (`*.json`), or else a Nix installable (a file or flake ref).
 */
export function classifyTarget(arg: string, storeDir: string): Target {
  // A store path itself, not a symlink: nothing to resolve (one lstat, where
  // realpath takes one per component; a closure given as arguments is thousands).
  if (arg.startsWith(storeDir + "/") && !arg.includes("/", storeDir.length + 1)) {
    const st = lstatSync(arg, { throwIfNoEntry: false });
    if (st && !st.isSymbolicLink()) return fromStorePath(parseStorePath(arg, storeDir).path);
  }
  const onDisk = existsSync(arg);
  if (onDisk && !arg.startsWith(storeDir + "/")) {
    const real = realpathSync(arg);
    if (real.startsWith(storeDir + "/")) return fromStorePath(toStorePath(real, storeDir).path);
    if (/\.json$/.test(arg) && statSync(real).isFile()) return { kind: "bundle", file: real };
    if (/\.nix$/.test(arg) || statSync(real).isDirectory())
      return { kind: "installable", installable: resolve(arg) };
    throw new NixError(
      "NOT_IN_STORE",
      `'${arg}' resolves to ${real}, which is outside the Nix store ${storeDir}`,
    );
  }
  if (arg.startsWith("/")) {
    if (!arg.startsWith(storeDir + "/")) {
      throw new NixError("NOT_IN_STORE", `'${arg}' is not in the Nix store ${storeDir}`);
    }
    const p = onDisk
      ? toStorePath(realpathSync(arg), storeDir).path
      : parseStorePath(arg, storeDir).path;
    if (!onDisk)
      throw new NixError("NOT_VALID", `${p} does not exist (not built, or garbage-collected)`);
    return fromStorePath(p);
  }
  if (/[#:]/.test(arg)) return { kind: "installable", installable: arg };
  throw new NixError("NOT_VALID", `'${arg}' does not exist and is not a flake reference`);
}

function fromStorePath(path: string): Target {
  return isDerivationPath(path) ? { kind: "derivation", drvPath: path } : { kind: "output", path };
}

/** The derivation that produced an output, as Nix recorded it. */
export async function derivationOf(store: NixStore, outputPath: string): Promise<string> {
  const info = (await store.pathInfos([outputPath])).get(outputPath);
  if (!info) throw new NixError("NOT_VALID", `${outputPath} is not a valid store path`);
  if (!info.deriver) {
    throw new NixError(
      "NOT_BUILT",
      `${outputPath} has no deriver recorded (added to the store, not built)`,
    );
  }
  if (!existsSync(info.deriver)) {
    throw new NixError(
      "NOT_VALID",
      `the derivation of ${outputPath}, ${info.deriver}, is gone (garbage-collected?)`,
    );
  }
  return info.deriver;
}

const FLAKES = ["--extra-experimental-features", "nix-command flakes"];

/**
 * Evaluate an installable to derivation paths: `nix-instantiate` for a .nix file,
 * `nix eval` for a flake reference (with the locked flake it came from).
 */
export async function instantiate(
  installable: string,
  attribute?: string,
): Promise<{ drvPaths: string[]; flake?: FlakeSource }> {
  if (existsSync(installable)) {
    const args = [installable, ...(attribute !== undefined ? ["-A", attribute] : [])];
    const { stdout } = await runNix("nix-instantiate", args);
    const drvPaths = stdout
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => l.replace(/!.*$/, ""));
    return { drvPaths };
  }
  const ref = attribute !== undefined ? `${installable}.${attribute}` : installable;
  const [{ stdout }, flake] = await Promise.all([
    runNix("nix", [...FLAKES, "eval", "--raw", `${ref}.drvPath`]),
    flakeSource(installable.replace(/#.*$/, "")),
  ]);
  return { drvPaths: [stdout.trim()], flake };
}

/** The locked source of a flake (`nix flake metadata`): URL, store path, NAR hash. */
export async function flakeSource(flakeRef: string): Promise<FlakeSource> {
  const { stdout } = await runNix("nix", [...FLAKES, "flake", "metadata", "--json", flakeRef]);
  const m = JSON.parse(stdout) as { url?: string; path?: string; locked?: { narHash?: string } };
  if (!m.url || !m.path || !m.locked?.narHash) {
    throw new NixError(
      "NIX_COMMAND_FAILED",
      `nix flake metadata gave no locked source for ${flakeRef}`,
    );
  }
  return { url: m.url, path: m.path, narHash: parseNixHash(m.locked.narHash, "sha256").hex };
}

/** Build derivations (all outputs). */
export async function realise(drvPaths: readonly string[]): Promise<void> {
  await runNix("nix-store", ["--realise", ...drvPaths]);
}
