import { narinfoFingerprint, splitNixSignature } from "../nix/index.js";
import { verifySignature, type PublicKey } from "../sign/index.js";

/**
 * The name of the trusted key whose binary-cache signature (`name:base64`) verifies
 * over a path's narinfo fingerprint, if any does. Only keys whose name the signature
 * gives are tried, as Nix does.
 */
export function narinfoSigner(
  info: {
    readonly path: string;
    readonly narHash: string;
    readonly narSize: number;
    readonly references: readonly string[];
  },
  signatures: readonly string[],
  keys: readonly PublicKey[],
): string | undefined {
  const fingerprint = Buffer.from(
    narinfoFingerprint(info.path, info.narHash, info.narSize, info.references),
  );
  for (const sig of signatures) {
    const parsed = splitNixSignature(sig);
    if (!parsed) continue;
    for (const key of keys.filter((k) => k.keyid === parsed.keyName)) {
      if (verifySignature(key, fingerprint, parsed.signature)) return key.keyid;
    }
  }
  return undefined;
}
