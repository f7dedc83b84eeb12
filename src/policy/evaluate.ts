import { claimedBuildLevel, withoutBuildLevel } from "../assess/index.js";
import { SLSA_PROVENANCE_V1, type ResourceDescriptor, type Statement } from "../attest/index.js";
import type { PathInfo } from "../nix/index.js";
import { claimsFrom, reproducedBy, type Claim } from "../repro/index.js";
import { keyIdentity, type PublicKey } from "../sign/index.js";
import {
  builderIdOf,
  identityMismatch,
  narinfoSigner,
  verifyAttestation,
  type AttestationVerification,
  type SignatureResults,
} from "../verify/index.js";
import { exceptionFor, globToRegExp, type Policy } from "./policy.js";

// Whole-closure verification against a policy: every path needs trusted
// provenance, a trusted binary-cache signature (substituted), a digest named by
// trusted provenance (sources), or an exception. Pure: the caller gathers facts.

export const SBOM_PREDICATES: readonly string[] = [
  "https://cyclonedx.org/bom",
  "https://spdx.dev/Document",
];

export interface StoredBundle {
  readonly id: number;
  readonly bundle: Uint8Array;
  /** How reasons name it (default `#<id>`, its attestation-store id). */
  readonly label?: string;
}

const labelOf = (a: StoredBundle) => a.label ?? `#${a.id}`;

export interface ClosurePath {
  readonly path: string;
  /** NAR sha256 of the path as it is now (rehashed, or Nix's record); absent when not in the store. */
  readonly sha256?: string;
  readonly info?: PathInfo;
  /** One of the artifacts asked about (not a dependency). */
  readonly root: boolean;
  /** The stored attestations that name this path as a subject, any predicate. */
  readonly attestations: readonly StoredBundle[];
}

export type Basis = "provenance" | "substituted" | "source" | "excepted";

export interface PathResult {
  readonly path: string;
  readonly root: boolean;
  readonly ok: boolean;
  readonly basis?: Basis;
  /** Why it failed; for an exception, its reason. */
  readonly reason?: string;
  /** What made it pass: the builder, the cache key, the provenance naming the source. */
  readonly detail?: string;
  /** The SLSA Build level its evidence supports (0 without provenance). */
  readonly level?: number;
  /** The attestations the verdict rests on: store id and sha256 of the bundle bytes. */
  readonly used: readonly { id: number; sha256: string }[];
}

export interface PolicyResult {
  readonly ok: boolean;
  /** A reason that fails everything (an expired policy). */
  readonly reason?: string;
  readonly paths: readonly PathResult[];
}

export interface EvaluateOptions {
  readonly now: Date;
  /** sha256 of a bundle's bytes (hashing is the caller's; this stays pure and fast). */
  readonly digest: (bytes: Uint8Array) => string;
  /** Signatures checked ahead (preverifySignatures), so that this pure pass need not. */
  readonly signatures?: SignatureResults;
}

function buildTypeOf(statement: Statement): string | undefined {
  const p = statement.predicate as { buildDefinition?: { buildType?: unknown } } | undefined;
  const t = p?.buildDefinition?.buildType;
  return typeof t === "string" ? t : undefined;
}

function dependenciesOf(statement: Statement): ResourceDescriptor[] {
  const p = statement.predicate as
    { buildDefinition?: { resolvedDependencies?: unknown } } | undefined;
  const d = p?.buildDefinition?.resolvedDependencies;
  return Array.isArray(d) ? (d as ResourceDescriptor[]) : [];
}

const sameKey = (a: PublicKey, b: PublicKey) => keyIdentity(a) === keyIdentity(b);

function score(v: AttestationVerification): number {
  return v.checks.filter((c) => c.ok).length;
}

/** The flake-source rules of the policy, applied to the artifact's provenance. */
function sourceProblem(policy: Policy, statement: Statement): string | undefined {
  const { allow, deny } = policy.sources;
  if (allow === undefined && deny.length === 0) return undefined;
  const flakes = dependenciesOf(statement)
    .filter((d) => d.annotations?.["nix.kind"] === "flake")
    .map((d) => (d.uri ?? "").replace(/\?.*$/, ""));
  if (flakes.length === 0) {
    return allow !== undefined
      ? `provenance names no flake source; the policy allows only ${allow.join(", ")}`
      : undefined;
  }
  for (const url of flakes) {
    const denied = deny.find((p) => globToRegExp(p).test(url));
    if (denied) return `flake source ${url} is denied by the policy (${denied})`;
    if (allow !== undefined && !allow.some((p) => globToRegExp(p).test(url))) {
      return `flake source ${url} is not among the sources the policy allows (${allow.join(", ")})`;
    }
  }
  return undefined;
}

interface ProvenanceOk {
  readonly id: number;
  readonly level: number;
  readonly builder: string;
  readonly statement: Statement;
}

/** The best provenance for a path under the policy, or the reason none holds. */
function checkProvenance(
  policy: Policy,
  p: ClosurePath,
  sha256: string,
  builderKeys: readonly PublicKey[],
  signatures: SignatureResults | undefined,
): ProvenanceOk | { reason: string } {
  const identities = policy.builders.flatMap((b) => b.identities);
  const keyless = policy.keyless ? { keyless: { material: policy.keyless, identities } } : {};
  const candidates = p.attestations.map((a) => ({
    a,
    v: verifyAttestation(a.bundle, {
      trustedKeys: builderKeys,
      ...keyless,
      ...(signatures ? { signatures } : {}),
      predicateType: SLSA_PROVENANCE_V1,
      subject: { name: p.path, sha256 },
    }),
  }));
  // Other predicate types are not provenance: leave them out of the reasons unless nothing else.
  const provenance = candidates.filter(
    (c) => !(c.v.statement && c.v.statement.predicateType !== SLSA_PROVENANCE_V1),
  );
  let best: { reason: string; score: number } | undefined;
  const fail = (reason: string, s: number) => {
    if (!best || s > best.score) best = { reason, score: s };
  };
  for (const { a, v } of provenance) {
    if (!v.ok || !v.statement || !v.signer) {
      fail(v.reason ?? "not verified", score(v));
      continue;
    }
    const signer = v.signer;
    const id = builderIdOf(v.statement) ?? "";
    const base = score(v) + 1;
    const cert = v.certificate;
    const entry = policy.builders.find(
      (b) =>
        (cert
          ? b.identities.some((r) => identityMismatch(cert, r) === undefined)
          : b.keys.some((k) => sameKey(k, signer))) &&
        (b.id === undefined || withoutBuildLevel(b.id) === withoutBuildLevel(id)),
    );
    if (!entry) {
      fail(
        `provenance ${labelOf(a)} is signed by ${signer.keyid} as builder '${id}', which the policy does not bind to that key`,
        base,
      );
      continue;
    }
    const type = buildTypeOf(v.statement);
    if (type === undefined || !policy.buildTypes.includes(type)) {
      fail(
        `provenance ${labelOf(a)} has buildType '${type ?? "none"}', which the policy does not accept`,
        base + 1,
      );
      continue;
    }
    const level = claimedBuildLevel(id) ?? 1;
    const min = policy.require.buildLevel;
    if (min !== undefined && level < min) {
      fail(
        `provenance ${labelOf(a)} is from builder '${id}' at SLSA Build L${level}; the policy requires L${min}`,
        base + 2,
      );
      continue;
    }
    if (p.root) {
      const problem = sourceProblem(policy, v.statement);
      if (problem) {
        fail(`provenance ${labelOf(a)}: ${problem}`, base + 3);
        continue;
      }
    }
    return { id: a.id, level, builder: id, statement: v.statement };
  }
  if (best) return { reason: best.reason };
  return { reason: `no provenance for ${p.path}` };
}

/** A substituted path's binary-cache signatures, checked against the policy's cache keys. */
function checkSubstituted(
  policy: Policy,
  info: PathInfo,
): { ok: true; key: string } | { ok: false; reason: string } {
  const signer = narinfoSigner(info, info.signatures, policy.substituterKeys);
  if (signer !== undefined) return { ok: true, key: signer };
  const names = info.signatures.map((s) => s.slice(0, s.indexOf(":")));
  if (info.signatures.length === 0) {
    return { ok: false, reason: `${info.path} was substituted without a binary-cache signature` };
  }
  const trusted = policy.substituterKeys.filter((k) => names.includes(k.keyid));
  return {
    ok: false,
    reason:
      trusted.length > 0
        ? `the narinfo signature of ${info.path} by ${trusted.map((k) => k.keyid).join(", ")} does not verify`
        : `${info.path} was substituted, signed by ${names.join(", ")}, none of them a cache the policy trusts`,
  };
}

/** Claims of the keys the policy trusts for reproduction: builders and rebuilders. */
function claimsOf(p: ClosurePath, keys: readonly PublicKey[]): Claim[] {
  const sources = p.attestations.map((a) => ({
    source: a.label ?? `store #${a.id}`,
    bytes: a.bundle,
  }));
  return claimsFrom(sources, keys).claims;
}

/** What pass 2 needs of a path once pass 1 is done: not its attestations. */
interface Checked {
  readonly path: string;
  readonly root: boolean;
  readonly sha256: string | undefined;
  readonly info: PathInfo | undefined;
  readonly first: PathResult | { reason: string };
}

/**
 * A closure evaluated against a policy in parts, so that a large one need not be
 * held whole: `add` checks the provenance of some paths (pass 1) and keeps only
 * its verdicts and what that provenance names as inputs; `result` decides the
 * paths without provenance (pass 2). Paths are reported in the order added.
 */
export class PolicyEvaluation {
  private readonly checked: Checked[] = [];
  /** What verified provenance names as inputs: it vouches for sources. */
  private readonly vouched = new Map<string, { sha256: string; by: string }[]>();
  private readonly builderKeys: PublicKey[];
  private readonly reproKeys: PublicKey[];

  constructor(
    private readonly policy: Policy,
    private readonly o: Omit<EvaluateOptions, "signatures">,
  ) {
    this.builderKeys = policy.builders.flatMap((b) => b.keys);
    this.reproKeys = [...this.builderKeys, ...policy.rebuilders];
  }

  private expired(): boolean {
    const { expires } = this.policy;
    return expires !== undefined && expires.getTime() <= this.o.now.getTime();
  }

  /** Pass 1 for these paths, with the signatures checked ahead for their bundles. */
  add(closure: readonly ClosurePath[], signatures?: SignatureResults): void {
    if (this.expired()) return;
    for (const p of closure) {
      this.checked.push({
        path: p.path,
        root: p.root,
        sha256: p.sha256,
        info: p.info,
        first: this.provenanceOf(p, signatures),
      });
    }
  }

  private provenanceOf(
    p: ClosurePath,
    signatures: SignatureResults | undefined,
  ): PathResult | { reason: string } {
    const { policy, o } = this;
    if (p.sha256 === undefined) {
      return { reason: `${p.path} is not in the local store, so it cannot be checked` };
    }
    const r = checkProvenance(policy, p, p.sha256, this.builderKeys, signatures);
    if ("reason" in r) return r;
    for (const d of dependenciesOf(r.statement)) {
      if (d.name && d.digest?.sha256) {
        const list = this.vouched.get(d.name) ?? [];
        list.push({ sha256: d.digest.sha256, by: p.path });
        this.vouched.set(d.name, list);
      }
    }
    const ids = [r.id];
    let failure: string | undefined;
    if (policy.require.reproducedBy !== undefined) {
      const agreeing = reproducedBy(claimsOf(p, this.reproKeys), p.path, p.sha256);
      if (agreeing.length < policy.require.reproducedBy) {
        failure = `reproduced by ${agreeing.length} trusted key(s), the policy requires ${policy.require.reproducedBy}`;
      }
    }
    if (!failure && p.root && policy.require.sbom) {
      const sbom = p.attestations.find((a) => {
        const v = verifyAttestation(a.bundle, {
          trustedKeys: this.builderKeys,
          ...(signatures ? { signatures } : {}),
          subject: { name: p.path, sha256: p.sha256 ?? "" },
        });
        return v.ok && v.statement && SBOM_PREDICATES.includes(v.statement.predicateType);
      });
      if (sbom) ids.push(sbom.id);
      else failure = `no SBOM attestation (CycloneDX or SPDX) from a trusted builder for ${p.path}`;
    }
    return {
      path: p.path,
      root: p.root,
      ok: failure === undefined,
      basis: "provenance",
      ...(failure !== undefined ? { reason: failure } : {}),
      detail: `provenance #${r.id} from builder '${r.builder}'`,
      level: r.level,
      used: p.attestations
        .filter((a) => ids.includes(a.id))
        .map((a) => ({ id: a.id, sha256: o.digest(a.bundle) })),
    };
  }

  /** Pass 2: what has no provenance (exceptions, substitutes, sources), and the verdict. */
  result(): PolicyResult {
    const { policy, o } = this;
    if (this.expired()) {
      return {
        ok: false,
        reason: `the policy${policy.name ? ` '${policy.name}'` : ""} expired at ${(policy.expires as Date).toISOString()}`,
        paths: [],
      };
    }
    const paths = this.checked.map((p): PathResult => {
      const r = p.first;
      if ("path" in r && r.ok) return r;
      const failed = (reason: string): PathResult => ({
        path: p.path,
        root: p.root,
        ok: false,
        reason,
        used: [],
      });
      const why = r.reason ?? `no provenance for ${p.path}`;
      const exception = exceptionFor(policy, p.path);
      if (exception) {
        if (exception.expires === undefined || exception.expires.getTime() > o.now.getTime()) {
          return {
            path: p.path,
            root: p.root,
            ok: true,
            basis: "excepted",
            reason: exception.reason,
            level: 0,
            used: [],
          };
        }
        return failed(
          `${why} (its policy exception expired at ${exception.expires.toISOString()})`,
        );
      }
      if ("path" in r) return r; // provenance verified, but a requirement failed
      const info = p.info;
      if (!info || p.sha256 === undefined) return failed(why);
      // Substituted (not built here): a binary cache's signature is the evidence.
      const subst =
        !info.ultimate && info.signatures.length > 0 ? checkSubstituted(policy, info) : undefined;
      if (subst?.ok) {
        return {
          path: p.path,
          root: p.root,
          ok: true,
          basis: "substituted",
          detail: `narinfo signed by ${subst.key}`,
          level: 0,
          used: [],
        };
      }
      if (subst) return failed(`${why}; ${subst.reason}`);
      if (!info.deriver) {
        // A source added to the store: the provenance that used it names its digest.
        const named = this.vouched.get(p.path) ?? [];
        const match = named.find((v) => v.sha256 === p.sha256);
        if (match) {
          return {
            path: p.path,
            root: p.root,
            ok: true,
            basis: "source",
            detail: `named with this digest by the provenance of ${match.by}`,
            level: 0,
            used: [],
          };
        }
        return failed(
          named.length > 0
            ? `source ${p.path} has sha256 ${p.sha256}, but the provenance of ${named[0]?.by ?? "?"} names ${named[0]?.sha256 ?? "?"}`
            : `source ${p.path} is not named by any verified provenance in the closure`,
        );
      }
      return failed(why);
    });
    return { ok: paths.every((p) => p.ok), paths };
  }
}

/** Evaluate a closure against a policy. Paths are reported in the order given. */
export function evaluatePolicy(
  policy: Policy,
  closure: readonly ClosurePath[],
  o: EvaluateOptions,
): PolicyResult {
  const evaluation = new PolicyEvaluation(policy, { now: o.now, digest: o.digest });
  evaluation.add(closure, o.signatures);
  return evaluation.result();
}
