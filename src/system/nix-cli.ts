import { readFileSync } from "node:fs";
import {
  DEFAULT_STORE_DIR,
  isDerivationPath,
  NixError,
  outputPath,
  parseDerivation,
  parseNixHash,
  type Derivation,
  type NixStore,
  type PathInfo,
} from "../nix/index.js";
import { runNix, runNixCommand } from "./exec.js";

/** Reads a `.drv` file from the store; malformed files become NixErrors. */
export function readDerivationFile(drvPath: string): Promise<Derivation> {
  // Synchronous read inside: a .drv is a few KB and a thread-pool round trip costs more.
  return new Promise((resolve) => resolve(parseDerivation(readDrvText(drvPath), drvPath)));
}

function readDrvText(drvPath: string): string {
  try {
    return readFileSync(drvPath, "utf8");
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    throw new NixError(
      "NOT_VALID",
      code === "ENOENT"
        ? `derivation ${drvPath} does not exist (garbage-collected?)`
        : `cannot read derivation ${drvPath}: ${String(code ?? cause)}`,
      { cause },
    );
  }
}

interface PathInfoJson {
  path: string;
  valid?: boolean;
  narHash?: string;
  narSize?: number;
  references?: string[];
  deriver?: string;
  registrationTime?: number;
  ultimate?: boolean;
  signatures?: string[];
  ca?: string;
}

export function pathInfoFromJson(j: PathInfoJson): PathInfo {
  if (j.narHash === undefined) {
    throw new NixError("NIX_COMMAND_FAILED", `nix path-info gave no narHash for ${j.path}`);
  }
  return {
    path: j.path,
    narHash: parseNixHash(j.narHash, "sha256").hex,
    narSize: j.narSize ?? 0,
    references: j.references ?? [],
    ...(j.deriver ? { deriver: j.deriver } : {}),
    ...(j.registrationTime !== undefined ? { registrationTime: j.registrationTime } : {}),
    ultimate: j.ultimate ?? false,
    signatures: j.signatures ?? [],
    ...(j.ca ? { ca: j.ca } : {}),
  };
}

/** The NixStore adapter over the nix command line. */
export class NixCliStore implements NixStore {
  constructor(readonly storeDir: string = DEFAULT_STORE_DIR) {}

  async validPaths(paths: readonly string[]): Promise<string[]> {
    if (paths.length === 0) return [];
    const { stdout } = await runNix("nix-store", ["--check-validity", "--print-invalid", ...paths]);
    const invalid = new Set(stdout.split("\n").filter((l) => l !== ""));
    return paths.filter((p) => !invalid.has(p));
  }

  async pathInfos(paths: readonly string[]): Promise<Map<string, PathInfo>> {
    const valid = await this.validPaths(paths);
    const out = new Map<string, PathInfo>();
    if (valid.length === 0) return out;
    // The new CLI reads a .drv path as "its outputs"; --derivation makes it the .drv itself.
    const drvs = valid.filter(isDerivationPath);
    const others = valid.filter((p) => !isDerivationPath(p));
    const runs = [
      ...(drvs.length > 0 ? [runNixCommand(["path-info", "--json", "--derivation", ...drvs])] : []),
      ...(others.length > 0 ? [runNixCommand(["path-info", "--json", ...others])] : []),
    ];
    for (const { stdout } of await Promise.all(runs)) {
      for (const j of JSON.parse(stdout) as PathInfoJson[]) {
        if (j.valid === false) continue;
        out.set(j.path, pathInfoFromJson(j));
      }
    }
    return out;
  }

  async closure(paths: readonly string[]): Promise<string[]> {
    if (paths.length === 0) return [];
    const { stdout } = await runNix("nix-store", ["--query", "--requisites", ...paths]);
    return stdout
      .split("\n")
      .filter((l) => l !== "")
      .sort();
  }

  async derivationOutputs(drvPath: string): Promise<Map<string, string>> {
    const drv = await this.readDerivation(drvPath);
    const known = drv.outputs.flatMap(([name, o]) => {
      const p = outputPath(o);
      return p === undefined ? [] : [[name, p] as const];
    });
    const valid = new Set(await this.validPaths(known.map(([, p]) => p)));
    return new Map(known.filter(([, p]) => valid.has(p)));
  }

  readDerivation(drvPath: string): Promise<Derivation> {
    return readDerivationFile(drvPath);
  }
}
