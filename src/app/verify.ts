import { SLSA_PROVENANCE_V1 } from "../attest/index.js";
import { NixError, parseStorePath, type NixStore } from "../nix/index.js";
import type { PublicKey } from "../sign/index.js";
import type { AttestationStore } from "../store/index.js";
import { hashNar } from "../system/nar-dump.js";
import {
  FOREIGN_STATEMENT_TYPES,
  verifyAttestation,
  type AttestationVerification,
  type KeylessTrust,
} from "../verify/index.js";
import { claimsFrom, consensusFor, reproducedBy } from "../repro/index.js";
import { storedSources } from "./consensus.js";

export interface VerifyContext {
  readonly nix: NixStore;
  readonly store: AttestationStore;
  readonly trustedKeys: readonly PublicKey[];
  /** Keyless signers trusted, with the trusted root (also for timestamps). */
  readonly keyless?: KeylessTrust;
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
        ...(ctx.keyless ? { keyless: ctx.keyless } : {}),
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
  /**
   * What the subject was checked against: a store path (by its full name, or by its
   * base name, as `cosign attest-blob --hash <NAR sha256> /nix/store/...` names it),
   * an artifact file given on the command line, or nothing.
   */
  readonly status:
    | "verified"
    | "digest-mismatch"
    | "artifact-verified"
    | "not-in-local-store"
    | "not-a-store-path";
  /** The store path the subject names, when it names one. */
  readonly path?: string;
  /** The artifact file whose sha256 the subject carries. */
  readonly artifact?: string;
  /** Absent when the subject is not a store path present on this machine. */
  readonly actual?: string;
  /** Where `actual` came from: the NAR rehashed from disk, or Nix's record. */
  readonly actualFrom?: "disk" | "nix-record";
  readonly ok: boolean | undefined;
}

export interface BundleVerification {
  readonly file: string;
  readonly ok: boolean;
  readonly reason?: string;
  readonly attestation: AttestationVerification;
  readonly subjects: readonly SubjectCheck[];
}

/** A file given to check a subject against (`verify --artifact`): its name and sha256. */
export interface Artifact {
  readonly file: string;
  readonly sha256: string;
}

/**
 * Verify a bundle file: its signature, then each subject: a store path present in
 * the local store (rehashed, or Nix's record), or an artifact file given by the user.
 */
export async function verifyBundle(
  ctx: Omit<VerifyContext, "store">,
  file: string,
  bytes: Uint8Array,
  predicateType?: string,
  artifacts: readonly Artifact[] = [],
): Promise<BundleVerification> {
  const attestation = verifyAttestation(bytes, {
    trustedKeys: ctx.trustedKeys,
    ...(ctx.keyless ? { keyless: ctx.keyless } : {}),
    statementTypes: FOREIGN_STATEMENT_TYPES,
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
  const storeDir = ctx.nix.storeDir;
  const pathOf = (name: string): string | undefined => {
    if (isStorePathName(name, storeDir)) return name;
    const full = `${storeDir}/${name}`;
    return !name.includes("/") && isStorePathName(full, storeDir) ? full : undefined;
  };
  const statement = attestation.statement;
  const paths = statement.subject.map((s) => pathOf(s.name ?? ""));
  const infos = await ctx.nix.pathInfos(paths.filter((p): p is string => p !== undefined));
  const subjects: SubjectCheck[] = statement.subject.map((s, i) => {
    const name = s.name ?? "";
    const attested = s.digest?.sha256;
    const artifact = artifacts.find((a) => a.sha256 === attested);
    if (artifact) {
      return { name, attested, status: "artifact-verified", artifact: artifact.file, ok: true };
    }
    const path = paths[i];
    if (path === undefined) return { name, attested, status: "not-a-store-path", ok: undefined };
    const info = infos.get(path);
    if (!info) return { name, attested, status: "not-in-local-store", path, ok: undefined };
    const actual = ctx.rehash ? hashNar(path).sha256 : info.narHash;
    const ok = actual === attested;
    const status = ok ? "verified" : "digest-mismatch";
    const actualFrom = ctx.rehash ? "disk" : "nix-record";
    return { name, attested, status, path, actual, actualFrom, ok };
  });
  const bad = subjects.find((s) => s.ok === false);
  if (bad) {
    const reason = `subject digest mismatch for ${bad.name}: attested sha256 ${bad.attested ?? "none"}, actual ${bad.actual ?? "?"}`;
    return { file, ok: false, reason, attestation, subjects };
  }
  const unmatched = artifacts.filter((a) => !subjects.some((s) => s.artifact === a.file));
  if (unmatched.length > 0) {
    const a = unmatched[0] as Artifact;
    return {
      file,
      ok: false,
      reason: `no subject of the attestation has the sha256 of ${a.file} (${a.sha256})`,
      attestation,
      subjects,
    };
  }
  if (!subjects.some((s) => s.ok === true)) {
    return { file, ok: false, reason: uncheckedReason(subjects), attestation, subjects };
  }
  return { file, ok: true, attestation, subjects };
}

/** Why a validly signed attestation still proves nothing here: no subject could be checked. */
function uncheckedReason(subjects: readonly SubjectCheck[]): string {
  const foreign = subjects.filter((s) => s.status === "not-a-store-path").map((s) => `'${s.name}'`);
  const absent = subjects.filter((s) => s.status === "not-in-local-store").map((s) => s.name);
  const parts: string[] = [];
  if (foreign.length > 0) {
    parts.push(
      `${foreign.length === 1 ? "subject" : "subjects"} ${foreign.join(", ")} ${foreign.length === 1 ? "is" : "are"} not a store path (pass --artifact FILE to check a file's digest)`,
    );
  }
  if (absent.length > 0) parts.push(`${absent.join(", ")} not in the local store`);
  return `signature is valid, but no subject was checked: ${parts.join("; ") || "the statement has no subjects"}`;
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
