// Attestations in a Nix binary cache, layout v1 (docs/binary-cache.md). Beside
// `<hashpart>.narinfo`, a cache holds:
//   <hashpart>.attestations                          the index: which bundles there are
//   attestations/<hashpart>/<sha256>.sigstore.json   each bundle, its exact bytes
// Nix reads neither (it asks for .narinfo, nar/ and nix-cache-info only), so
// `nix copy`, substitution and `nix store verify --store` work on the cache as before.
// Bundles are named by their sha256, so publishing again writes nothing new; the
// index is written after the bundles it names, so it never names a missing one.

import { CacheError } from "./error.js";

export const LAYOUT_VERSION = 1;

export interface IndexEntry {
  /** sha256 (hex) of the bundle's bytes: also its file name. */
  readonly sha256: string;
  readonly predicateType: string;
  /** The bundle's path in the cache, relative to its root. */
  readonly file: string;
}

export interface AttestationIndex {
  readonly version: typeof LAYOUT_VERSION;
  readonly storePath: string;
  readonly attestations: readonly IndexEntry[];
}

/** The hash part of a store path (`/nix/store/<hashpart>-name`). */
export function hashPart(storePath: string): string {
  const base = storePath.slice(storePath.lastIndexOf("/") + 1);
  return base.slice(0, 32);
}

export const narinfoFile = (storePath: string): string => `${hashPart(storePath)}.narinfo`;
export const indexFile = (storePath: string): string => `${hashPart(storePath)}.attestations`;
export const bundleFile = (storePath: string, sha256: string): string =>
  `attestations/${hashPart(storePath)}/${sha256}.sigstore.json`;

/** The index with these entries added (by sha256, once), sorted for stable bytes. */
export function withEntries(
  storePath: string,
  current: AttestationIndex | undefined,
  added: readonly IndexEntry[],
): AttestationIndex {
  const all = new Map<string, IndexEntry>();
  for (const e of [...(current?.attestations ?? []), ...added]) all.set(e.sha256, e);
  return {
    version: LAYOUT_VERSION,
    storePath,
    attestations: [...all.values()].sort((a, b) => a.sha256.localeCompare(b.sha256)),
  };
}

export function indexBytes(index: AttestationIndex): Buffer {
  return Buffer.from(JSON.stringify(index, null, 1) + "\n");
}

/** Parse an index fetched from a cache: untrusted, so each field is checked. */
export function parseIndex(bytes: Uint8Array, storePath: string): AttestationIndex {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(bytes).toString("utf8"));
  } catch {
    throw new CacheError("MALFORMED", `the attestation index of ${storePath} is not JSON`);
  }
  const i = v as Partial<AttestationIndex> | null;
  if (i === null || typeof i !== "object" || i.version !== LAYOUT_VERSION) {
    throw new CacheError(
      "MALFORMED",
      `the attestation index of ${storePath} is not layout version ${LAYOUT_VERSION}`,
    );
  }
  if (i.storePath !== storePath) {
    throw new CacheError(
      "MALFORMED",
      `the attestation index for ${storePath} is about ${String(i.storePath)}`,
    );
  }
  const entries = Array.isArray(i.attestations) ? i.attestations : undefined;
  const ok = (e: IndexEntry) =>
    typeof e === "object" &&
    e !== null &&
    /^[0-9a-f]{64}$/.test(e.sha256) &&
    typeof e.predicateType === "string" &&
    e.file === bundleFile(storePath, e.sha256);
  if (!entries?.every(ok)) {
    throw new CacheError(
      "MALFORMED",
      `the attestation index of ${storePath} has a malformed entry`,
    );
  }
  return { version: LAYOUT_VERSION, storePath, attestations: entries };
}
