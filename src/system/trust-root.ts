// The Sigstore trust material a verifier starts from: a trusted_root.json given by
// the user, or the public-good instance's, fetched through TUF (@sigstore/tuf) and
// kept in a cache so that later verification works offline.
import { readFile } from "node:fs/promises";
import { getTrustedRoot } from "@sigstore/tuf";
import { toTrustMaterial, type TrustMaterial } from "@sigstore/verify";
import { SignError } from "../sign/index.js";
import { parseTrustedRoot } from "../verify/index.js";

export async function trustedRootFile(file: string): Promise<TrustMaterial> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? "unreadable";
    throw new SignError("MALFORMED_TRUST_ROOT", `cannot read trusted root ${file}: ${code}`);
  }
  return parseTrustedRoot(bytes, file);
}

/**
 * The public-good trusted root through TUF, refreshed when the mirror answers, and
 * otherwise the copy kept in `cachePath` by an earlier refresh.
 */
export async function publicGoodTrustedRoot(o: {
  cachePath: string;
  mirrorURL?: string;
  timeoutMs?: number;
}): Promise<TrustMaterial> {
  const base = {
    cachePath: o.cachePath,
    ...(o.mirrorURL !== undefined ? { mirrorURL: o.mirrorURL } : {}),
    timeout: o.timeoutMs ?? 15_000,
    retry: 1,
  };
  try {
    return toTrustMaterial(await getTrustedRoot(base));
  } catch (online) {
    try {
      return toTrustMaterial(await getTrustedRoot({ ...base, forceCache: true }));
    } catch {
      throw new SignError(
        "SIGNING_SERVICE",
        `cannot get the public-good trusted root through TUF (${(online as Error).message.replace(/\s+/g, " ")}), and no usable copy is cached in ${o.cachePath}: give --trusted-root FILE`,
      );
    }
  }
}
