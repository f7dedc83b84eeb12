import { encodeNixBase32 } from "./base32.js";
import { NixError } from "./error.js";
import { parseNixHash } from "./hash.js";
import { parseStorePath } from "./store-path.js";

/**
 * What a binary cache signs for a store path (libstore/path-info.cc
 * ValidPathInfo::fingerprint): `1;<path>;sha256:<nix32 NAR hash>;<NAR size>;<refs>`,
 * the references being full store paths, sorted, comma-separated.
 */
export function narinfoFingerprint(
  path: string,
  narHashHex: string,
  narSize: number,
  references: readonly string[],
): string {
  const nix32 = encodeNixBase32(Buffer.from(narHashHex, "hex"));
  return `1;${path};sha256:${nix32};${narSize};${[...references].sort().join(",")}`;
}

/** A Nix signature `name:base64`, split; undefined when malformed. */
export function splitNixSignature(sig: string): { keyName: string; signature: Buffer } | undefined {
  const i = sig.indexOf(":");
  if (i <= 0) return undefined;
  const signature = Buffer.from(sig.slice(i + 1), "base64");
  return signature.length === 64 ? { keyName: sig.slice(0, i), signature } : undefined;
}

/** A `.narinfo` file of a binary cache (libstore/nar-info.cc), as read by provenix. */
export interface NarInfo {
  readonly storePath: string;
  readonly url: string;
  readonly compression: string;
  /** Lower-case hex sha256 of the NAR. */
  readonly narHash: string;
  readonly narSize: number;
  /** Full store paths. */
  readonly references: readonly string[];
  readonly deriver?: string;
  /** `name:base64` signatures over the fingerprint. */
  readonly sigs: readonly string[];
  readonly ca?: string;
}

/**
 * Parse a `.narinfo`. Untrusted input from a cache: every field is checked, and
 * anything missing or malformed is a NixError naming the field.
 */
export function parseNarInfo(text: string, storeDir: string, what = "narinfo"): NarInfo {
  const fields = new Map<string, string>();
  const sigs: string[] = [];
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const i = line.indexOf(": ");
    if (i <= 0)
      throw new NixError("INVALID_NARINFO", `${what}: malformed line '${line.slice(0, 60)}'`);
    const key = line.slice(0, i);
    const value = line.slice(i + 2);
    if (key === "Sig") sigs.push(value);
    else if (fields.has(key))
      throw new NixError("INVALID_NARINFO", `${what}: ${key} is given twice`);
    else fields.set(key, value);
  }
  const need = (k: string): string => {
    const v = fields.get(k);
    if (v === undefined || v === "") throw new NixError("INVALID_NARINFO", `${what}: no ${k}`);
    return v;
  };
  const storePath = parseStorePath(need("StorePath"), storeDir).path;
  const size = Number(need("NarSize"));
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new NixError("INVALID_NARINFO", `${what}: NarSize is not a number`);
  }
  const full = (base: string) => parseStorePath(`${storeDir}/${base}`, storeDir).path;
  const refs = (fields.get("References") ?? "").split(" ").filter((r) => r !== "");
  const deriver = fields.get("Deriver");
  const ca = fields.get("CA");
  return {
    storePath,
    url: need("URL"),
    compression: fields.get("Compression") ?? "bzip2",
    narHash: parseNixHash(need("NarHash"), "sha256").hex,
    narSize: size,
    references: refs.map(full).sort(),
    ...(deriver && deriver !== "unknown-deriver" ? { deriver: full(deriver) } : {}),
    sigs,
    ...(ca ? { ca } : {}),
  };
}
