import { closeSync, openSync, readSync } from "node:fs";
import {
  DEFAULT_STORE_DIR,
  isDerivationPath,
  NixError,
  outputPath,
  checkDerivationPaths,
  parseDerivationBytes,
  parsePathInfoJson,
  type Derivation,
  type NixStore,
  type PathInfo,
} from "../nix/index.js";
import { runNix, runNixCommand } from "./exec.js";

/**
 * Reads a `.drv` file from the store; malformed files become NixErrors, and so does a
 * file whose path is not the one its bytes and references give, or whose fixed
 * outputs do not match their content addresses.
 */
export function readDerivationFile(
  drvPath: string,
  storeDir: string = DEFAULT_STORE_DIR,
): Promise<Derivation> {
  // Synchronous read inside: a .drv is a few KB and a thread-pool round trip costs more.
  return new Promise((resolve) => {
    const bytes = readDrvBytes(drvPath);
    const drv = parseDerivationBytes(bytes, drvPath);
    checkDerivationPaths(drvPath, bytes, drv, storeDir);
    resolve(drv);
  });
}

// One buffer for every .drv read, grown as needed: reading tens of thousands of
// them with readFileSync allocates a buffer each outside the JS heap, which the
// allocator keeps long after they are garbage (most of an SBOM's peak memory).
let readBuffer = Buffer.allocUnsafeSlow(64 * 1024);

/** The file's bytes, valid until the next call (parse and check them before then). */
function readDrvBytes(drvPath: string): Buffer {
  try {
    const fd = openSync(drvPath, "r");
    try {
      let length = 0;
      for (;;) {
        if (length === readBuffer.length) {
          const bigger = Buffer.allocUnsafeSlow(readBuffer.length * 2);
          readBuffer.copy(bigger);
          readBuffer = bigger;
        }
        const n = readSync(fd, readBuffer, length, readBuffer.length - length, null);
        if (n === 0) return readBuffer.subarray(0, length);
        length += n;
      }
    } finally {
      closeSync(fd);
    }
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
      let doc: unknown;
      try {
        doc = JSON.parse(stdout);
      } catch (cause) {
        throw new NixError("NIX_COMMAND_FAILED", "nix path-info --json printed no JSON", { cause });
      }
      for (const [path, info] of parsePathInfoJson(doc, this.storeDir)) out.set(path, info);
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
    return (await this.derivationOutputsOf([drvPath])).get(drvPath) ?? new Map<string, string>();
  }

  async narHashes(paths: readonly string[]): Promise<Map<string, string>> {
    const infos = await this.pathInfos(paths);
    return new Map([...infos].map(([p, i]) => [p, i.narHash]));
  }

  async derivationOutputsOf(
    drvPaths: readonly string[],
  ): Promise<Map<string, Map<string, string>>> {
    const known = new Map<string, (readonly [string, string])[]>();
    for (const d of drvPaths) {
      const drv = await this.readDerivation(d);
      known.set(
        d,
        drv.outputs.flatMap(([name, o]) => {
          const p = outputPath(o);
          return p === undefined ? [] : [[name, p] as const];
        }),
      );
    }
    // One validity query for all of them.
    const valid = new Set(await this.validPaths([...known.values()].flat().map(([, p]) => p)));
    return new Map(
      [...known].map(([d, outs]) => [d, new Map(outs.filter(([, p]) => valid.has(p)))]),
    );
  }

  readDerivation(drvPath: string): Promise<Derivation> {
    return readDerivationFile(drvPath, this.storeDir);
  }
}
