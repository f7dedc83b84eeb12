// How Nix computes store paths (libstore/store-api.cc makeStorePath, makeType,
// makeFixedOutputPath, makeTextPath; libutil/hash.cc compressHash): so that a .drv's
// own path and a fixed output's path can be checked against the bytes and hashes
// they claim to come from, before provenance about them is signed.
import { createHash } from "node:crypto";
import { encodeNixBase32 } from "./base32.js";
import type { ContentAddressMethod, Derivation } from "./derivation.js";
import { NixError } from "./error.js";

/** XOR-fold a hash into `size` bytes (compressHash). */
function compressHash(hash: Buffer, size: number): Buffer {
  const out = Buffer.alloc(size);
  for (let i = 0; i < hash.length; i++)
    out[i % size] = (out[i % size] as number) ^ (hash[i] as number);
  return out;
}

/**
 * `<storeDir>/<nix32(compress(sha256(type:sha256:<hex>:<storeDir>:<name>)))>-<name>`,
 * with `innerSha256` the hex sha256 the type is about.
 */
export function makeStorePath(
  type: string,
  innerSha256: string,
  name: string,
  storeDir: string,
): string {
  const s = `${type}:sha256:${innerSha256}:${storeDir}:${name}`;
  const digest = createHash("sha256").update(s).digest();
  return `${storeDir}/${encodeNixBase32(compressHash(digest, 20))}-${name}`;
}

/** makeType: the type followed by every reference (full paths, sorted), and ":self". */
function makeType(type: string, references: readonly string[], self = false): string {
  return [type, ...[...references].sort(), ...(self ? ["self"] : [])].join(":");
}

/** The path of a text file added to the store with these references (a .drv, builtins.toFile). */
export function makeTextPath(
  name: string,
  contentSha256: string,
  references: readonly string[],
  storeDir: string,
): string {
  return makeStorePath(makeType("text", references), contentSha256, name, storeDir);
}

/**
 * The path of a fixed output with this content address and no references
 * (makeFixedOutputPath): NAR-sha256 outputs are "source" paths; other flat or NAR
 * hashes go through "fixed:out:"; the text method is a text path.
 */
export function makeFixedOutputPath(
  name: string,
  method: ContentAddressMethod,
  hashAlgo: string,
  hashHex: string,
  storeDir: string,
): string {
  if (method === "text") return makeTextPath(name, hashHex, [], storeDir);
  if (method === "nar" && hashAlgo === "sha256") {
    return makeStorePath(makeType("source", []), hashHex, name, storeDir);
  }
  const inner = createHash("sha256")
    .update(`fixed:out:${method === "nar" ? "r:" : ""}${hashAlgo}:${hashHex}:`)
    .digest("hex");
  return makeStorePath("output:out", inner, name, storeDir);
}

/** The store name of a derivation's output: the derivation's name, then `-<output>` unless "out". */
export function outputPathName(drvName: string, output: string): string {
  return output === "out" ? drvName : `${drvName}-${output}`;
}

/**
 * Check that a .drv is what its path says: the path is the text path of these exact
 * bytes with its inputs as references, and each fixed output's path is the one its
 * declared content address gives. Anything else is a corrupt or forged store, and
 * no provenance may be signed about it.
 */
export function checkDerivationPaths(
  drvPath: string,
  bytes: Uint8Array,
  drv: Derivation,
  storeDir: string,
): void {
  const base = drvPath.slice(storeDir.length + 1);
  const storeName = base.slice(33);
  const references = [...drv.inputSrcs, ...drv.inputDrvs.map(([p]) => p)];
  const sha = createHash("sha256").update(bytes).digest("hex");
  const expected = makeTextPath(storeName, sha, references, storeDir);
  if (expected !== drvPath) {
    throw new NixError(
      "MALFORMED_DERIVATION",
      `${drvPath}: its contents and references give the path ${expected}: not the derivation Nix wrote there`,
    );
  }
  const drvName = storeName.endsWith(".drv") ? storeName.slice(0, -4) : storeName;
  for (const [name, o] of drv.outputs) {
    if (o.kind !== "caFixed") continue;
    const path = makeFixedOutputPath(
      outputPathName(drvName, name),
      o.method,
      o.hashAlgo,
      o.hash,
      storeDir,
    );
    if (path !== o.path) {
      throw new NixError(
        "MALFORMED_DERIVATION",
        `${drvPath}: fixed output '${name}' claims ${o.path}, but its content address ${o.method}:${o.hashAlgo}:${o.hash} gives ${path}`,
      );
    }
  }
}
