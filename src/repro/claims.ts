import { SLSA_PROVENANCE_V1, type Statement } from "../attest/index.js";
import { keyIdentity, type PublicKey } from "../sign/index.js";
import { builderIdOf, verifyAttestation } from "../verify/index.js";
import type { Claim } from "./consensus.js";
import { ownBuilds, REPRODUCIBILITY_V1 } from "./predicate.js";

/** An attestation to take claims from: its bytes and where it came from. */
export interface ClaimSource {
  readonly source: string;
  readonly bytes: Uint8Array;
}

export interface Ignored {
  readonly source: string;
  readonly reason: string;
}

/** The builder a provenance (runDetails.builder.id) or reproducibility (rebuilder.id) statement names. */
export function builderOf(statement: Statement): string | undefined {
  const rebuilder = (statement.predicate as { rebuilder?: { id?: unknown } } | undefined)?.rebuilder
    ?.id;
  return builderIdOf(statement) ?? (typeof rebuilder === "string" ? rebuilder : undefined);
}

/**
 * Claims "this key built that path with this NAR hash", only from attestations
 * whose signature verifies with a trusted key (checked before the payload is
 * read). Provenance claims its subjects; a reproducibility attestation claims
 * the builds its signer made itself.
 */
export function claimsFrom(
  sources: readonly ClaimSource[],
  trustedKeys: readonly PublicKey[],
): { claims: Claim[]; ignored: Ignored[] } {
  const claims: Claim[] = [];
  const ignored: Ignored[] = [];
  for (const { source, bytes } of sources) {
    const v = verifyAttestation(bytes, { trustedKeys });
    if (!v.ok || !v.statement || !v.signer) {
      ignored.push({ source, reason: v.reason ?? "not verified" });
      continue;
    }
    const { statement, signer } = v;
    const builderId = builderOf(statement);
    const base = { signer: keyIdentity(signer), source, ...(builderId ? { builderId } : {}) };
    if (statement.predicateType === SLSA_PROVENANCE_V1) {
      for (const s of statement.subject) {
        if (s.name && s.digest?.sha256) {
          claims.push({ ...base, path: s.name, sha256: s.digest.sha256, kind: "provenance" });
        }
      }
    } else if (statement.predicateType === REPRODUCIBILITY_V1) {
      for (const [path, hashes] of ownBuilds(statement)) {
        for (const sha256 of hashes) claims.push({ ...base, path, sha256, kind: "rebuild" });
      }
    }
  }
  return { claims, ignored };
}
