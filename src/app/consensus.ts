import { SLSA_PROVENANCE_V1 } from "../attest/index.js";
import type { NixStore } from "../nix/index.js";
import {
  builderOf,
  claimsFrom,
  consensusFor,
  REPRODUCIBILITY_V1,
  type ClaimSource,
  type Ignored,
  type PathConsensus,
} from "../repro/index.js";
import { parseBundle, type PublicKey } from "../sign/index.js";
import type { AttestationStore, NewAttestation } from "../store/index.js";
import { verifyAttestation } from "../verify/index.js";

/** The attestations in the local store that name `path` as a subject. */
export function storedSources(store: AttestationStore, path: string): ClaimSource[] {
  return store
    .find({ subjectName: path })
    .filter((a) => a.predicateType === SLSA_PROVENANCE_V1 || a.predicateType === REPRODUCIBILITY_V1)
    .map((a) => ({ source: `store #${a.id}`, bytes: a.bundle }));
}

/** Agreement on `paths` across the local store and the given bundles. */
export async function consensus(
  ctx: { nix: NixStore; store: AttestationStore; trustedKeys: readonly PublicKey[] },
  paths: readonly string[],
  bundles: readonly ClaimSource[],
): Promise<{ paths: PathConsensus[]; ignored: Ignored[] }> {
  const infos = await ctx.nix.pathInfos(paths);
  const sources = [...paths.flatMap((p) => storedSources(ctx.store, p)), ...bundles];
  const { claims, ignored } = claimsFrom(sources, ctx.trustedKeys);
  return {
    paths: paths.map((p) => consensusFor(p, claims, infos.get(p)?.narHash)),
    ignored,
  };
}

/**
 * Keep another builder's attestation in the local store, after its signature
 * verifies with a trusted key. The exact bytes are kept.
 */
export function importBundle(
  store: AttestationStore,
  bytes: Buffer,
  trustedKeys: readonly PublicKey[],
):
  | { ok: true; id: number; inserted: boolean; predicateType: string }
  | { ok: false; reason: string } {
  const v = verifyAttestation(bytes, { trustedKeys });
  if (!v.ok || !v.statement || !v.signer) return { ok: false, reason: v.reason ?? "not verified" };
  const statement = v.statement;
  const p = statement.predicate as
    | {
        buildDefinition?: { externalParameters?: { derivation?: unknown } };
        derivation?: { path?: unknown };
      }
    | undefined;
  const derivation = p?.buildDefinition?.externalParameters?.derivation ?? p?.derivation?.path;
  const builderId = builderOf(statement);
  const record: NewAttestation = {
    bundle: bytes,
    payload: parseBundle(bytes).envelope.payload,
    keyid: v.signer.keyid,
    predicateType: statement.predicateType,
    ...(builderId ? { builderId } : {}),
    ...(typeof derivation === "string" ? { derivation } : {}),
    subjects: statement.subject
      .filter((s) => typeof s.name === "string")
      .map((s) => ({
        name: s.name ?? "",
        ...(s.digest?.sha256 ? { sha256: s.digest.sha256 } : {}),
      })),
  };
  const { id, inserted } = store.put(record);
  return { ok: true, id, inserted, predicateType: statement.predicateType };
}
