// Agreement across independent builders (in the manner of trustix): claims
// "signer K built path P with NAR hash H", taken only from attestations whose
// signature verified with a trusted key, grouped by H.

export type ClaimKind = "provenance" | "rebuild";

export interface Claim {
  readonly path: string;
  readonly sha256: string;
  /** The trusted key that signed the claim (its identity: Nix `name:base64` or PEM digest). */
  readonly signer: string;
  readonly builderId?: string;
  readonly kind: ClaimKind;
  /** Where the attestation came from: "store #12", a file name. */
  readonly source: string;
}

export interface Identity {
  /** One trusted key is one builder identity. */
  readonly signer: string;
  /** Every builder id this key claimed for the hash (one key may sign as several builders). */
  readonly builderIds: readonly string[];
  readonly kinds: readonly ClaimKind[];
}

export interface HashGroup {
  readonly sha256: string;
  readonly identities: readonly Identity[];
  /** Whether this is the hash of the path in the local store. */
  readonly local: boolean;
}

export interface PathConsensus {
  readonly path: string;
  /** The NAR hash of the local copy, when the path is valid here. */
  readonly localSha256?: string;
  /** Most identities first. */
  readonly groups: readonly HashGroup[];
  /** "agree": one hash, "disagree": several hashes, "none": no trusted claim. */
  readonly status: "agree" | "disagree" | "none";
}

/** Group the claims about one path by NAR hash; an identity counts once per hash. */
export function consensusFor(
  path: string,
  claims: readonly Claim[],
  localSha256?: string,
): PathConsensus {
  const byHash = new Map<string, Map<string, { ids: Set<string>; kinds: Set<ClaimKind> }>>();
  for (const c of claims) {
    if (c.path !== path) continue;
    const keys =
      byHash.get(c.sha256) ?? new Map<string, { ids: Set<string>; kinds: Set<ClaimKind> }>();
    const who = keys.get(c.signer) ?? { ids: new Set<string>(), kinds: new Set<ClaimKind>() };
    if (c.builderId !== undefined) who.ids.add(c.builderId);
    who.kinds.add(c.kind);
    keys.set(c.signer, who);
    byHash.set(c.sha256, keys);
  }
  const groups: HashGroup[] = [...byHash.entries()]
    .map(([sha256, keys]) => ({
      sha256,
      local: sha256 === localSha256,
      identities: [...keys.entries()]
        .map(([signer, w]) => ({
          signer,
          builderIds: [...w.ids].sort(),
          kinds: [...w.kinds].sort(),
        }))
        .sort((a, b) => a.signer.localeCompare(b.signer)),
    }))
    .sort(
      (a, b) =>
        b.identities.length - a.identities.length ||
        Number(b.local) - Number(a.local) ||
        a.sha256.localeCompare(b.sha256),
    );
  return {
    path,
    ...(localSha256 !== undefined ? { localSha256 } : {}),
    groups,
    status: groups.length === 0 ? "none" : groups.length === 1 ? "agree" : "disagree",
  };
}

/** The distinct trusted identities (keys) that claim to have produced `sha256` for `path`. */
export function reproducedBy(claims: readonly Claim[], path: string, sha256: string): string[] {
  const keys = new Set<string>();
  for (const c of claims) if (c.path === path && c.sha256 === sha256) keys.add(c.signer);
  return [...keys].sort();
}
