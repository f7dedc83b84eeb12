import { encodeNixBase32 } from "./base32.js";

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
