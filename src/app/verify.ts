import { SLSA_PROVENANCE_V1 } from "../attest/index.js";
import { NixError, parseStorePath, type NixStore } from "../nix/index.js";
import type { PublicKey } from "../sign/index.js";
import type { AttestationStore } from "../store/index.js";
import { hashNar } from "../system/nar-dump.js";
import { verifyAttestation, type AttestationVerification } from "../verify/index.js";
import { claimsFrom, consensusFor, reproducedBy } from "../repro/index.js";
import { storedSources } from "./consensus.js";

export interface VerifyContext {
  readonly nix: NixStore;
  readonly store: AttestationStore;
  readonly trustedKeys: readonly PublicKey[];
  readonly builderIds?: readonly string[];
  /** The SLSA Build level builder.id must claim at least. */
  readonly minBuildLevel?: number;
  /** Recompute each NAR hash from disk (default) instead of trusting Nix's record. */
  readonly rehash: boolean;
  /** Distinct trusted keys that must have produced the same NAR hash (provenance or rebuild). */
  readonly reproducedBy?: number;
}

export interface PathVerification {
  readonly path: string;
  readonly ok: boolean;
  readonly reason?: string;
  /** The sha256 of the path's NAR: recomputed from disk, or Nix's record with rehash off. */
  readonly sha256?: string;
  readonly rehashed: boolean;
  /** One entry per stored attestation that names this path, best first. */
  readonly attestations: readonly (AttestationVerification & { readonly id: number })[];
  /** With reproducedBy: the trusted keys whose own builds gave this NAR hash. */
  readonly reproducedBy?: readonly string[];
}

function score(v: AttestationVerification): number {
  return v.checks.filter((c) => c.ok).length + (v.ok ? 100 : 0);
}

/** Verify a store path against the provenance stored for it. */
export async function verifyStorePath(ctx: VerifyContext, path: string): Promise<PathVerification> {
  const info = (await ctx.nix.pathInfos([path])).get(path);
  const base = { path, rehashed: ctx.rehash, attestations: [] };
  if (!info) return { ...base, ok: false, reason: `${path} is not a valid store path` };
  let sha256 = info.narHash;
  if (ctx.rehash) {
    sha256 = hashNar(path).sha256;
    if (sha256 !== info.narHash) {
      return {
        ...base,
        sha256,
        ok: false,
        reason: `contents of ${path} changed on disk: NAR sha256 ${sha256}, Nix recorded ${info.narHash}`,
      };
    }
  }
  const stored = ctx.store.find({ subjectName: path, predicateType: SLSA_PROVENANCE_V1 });
  if (stored.length === 0) {
    return { ...base, sha256, ok: false, reason: `no provenance for ${path} in ${ctx.store.path}` };
  }
  const results = stored
    .map((a) => ({
      id: a.id,
      ...verifyAttestation(a.bundle, {
        trustedKeys: ctx.trustedKeys,
        predicateType: SLSA_PROVENANCE_V1,
        ...(ctx.builderIds ? { builderIds: ctx.builderIds } : {}),
        ...(ctx.minBuildLevel !== undefined ? { minBuildLevel: ctx.minBuildLevel } : {}),
        subject: { name: path, sha256 },
      }),
    }))
    .sort((a, b) => score(b) - score(a));
  const best = results[0];
  const result = { ...base, sha256, attestations: results };
  if (best?.ok !== true) {
    return { ...result, ok: false, reason: best?.reason ?? "no attestation verified" };
  }
  if (ctx.reproducedBy === undefined) return { ...result, ok: true };
  const { claims } = claimsFrom(storedSources(ctx.store, path), ctx.trustedKeys);
  const agreeing = reproducedBy(claims, path, sha256);
  if (agreeing.length >= ctx.reproducedBy) return { ...result, ok: true, reproducedBy: agreeing };
  const others = consensusFor(path, claims, sha256)
    .groups.filter((g) => !g.local)
    .map((g) => `${g.identities.map((i) => i.signer).join(", ")} signed sha256:${g.sha256}`);
  return {
    ...result,
    ok: false,
    reproducedBy: agreeing,
    reason:
      `reproduced by ${agreeing.length} trusted builder(s)` +
      `${agreeing.length > 0 ? ` (${agreeing.join(", ")})` : ""}, ${ctx.reproducedBy} required` +
      (others.length > 0 ? `; disagreeing: ${others.join("; ")}` : ""),
  };
}

export interface SubjectCheck {
  readonly name: string;
  readonly attested: string | undefined;
  /** Absent when the subject is not a store path present on this machine. */
  readonly actual?: string;
  readonly ok: boolean | undefined;
}

export interface BundleVerification {
  readonly file: string;
  readonly ok: boolean;
  readonly reason?: string;
  readonly attestation: AttestationVerification;
  readonly subjects: readonly SubjectCheck[];
}

/** Verify a bundle file: its signature, then each subject present in the local store. */
export async function verifyBundle(
  ctx: Omit<VerifyContext, "store">,
  file: string,
  bytes: Uint8Array,
  predicateType?: string,
): Promise<BundleVerification> {
  const attestation = verifyAttestation(bytes, {
    trustedKeys: ctx.trustedKeys,
    ...(predicateType !== undefined ? { predicateType } : {}),
    ...(ctx.builderIds ? { builderIds: ctx.builderIds } : {}),
    ...(ctx.minBuildLevel !== undefined ? { minBuildLevel: ctx.minBuildLevel } : {}),
  });
  if (!attestation.ok || !attestation.statement) {
    return {
      file,
      ok: false,
      reason: attestation.reason ?? "not verified",
      attestation,
      subjects: [],
    };
  }
  const subjects: SubjectCheck[] = [];
  const names = attestation.statement.subject.map((s) => s.name ?? "");
  const infos = await ctx.nix.pathInfos(names.filter((n) => isStorePathName(n, ctx.nix.storeDir)));
  for (const s of attestation.statement.subject) {
    const name = s.name ?? "";
    const attested = s.digest?.sha256;
    const info = infos.get(name);
    if (!info) {
      subjects.push({ name, attested, ok: undefined });
      continue;
    }
    const actual = ctx.rehash ? hashNar(name).sha256 : info.narHash;
    subjects.push({ name, attested, actual, ok: actual === attested });
  }
  const bad = subjects.find((s) => s.ok === false);
  const checked = subjects.filter((s) => s.ok === true).length;
  if (bad) {
    const reason = `subject digest mismatch for ${bad.name}: attested sha256 ${bad.attested ?? "none"}, actual ${bad.actual ?? "?"}`;
    return { file, ok: false, reason, attestation, subjects };
  }
  if (checked === 0) {
    return {
      file,
      ok: false,
      reason:
        "signature is valid, but none of the subjects is in the local store, so none was checked",
      attestation,
      subjects,
    };
  }
  return { file, ok: true, attestation, subjects };
}

function isStorePathName(name: string, storeDir: string): boolean {
  try {
    parseStorePath(name, storeDir);
    return true;
  } catch (e) {
    if (e instanceof NixError) return false;
    throw e;
  }
}
