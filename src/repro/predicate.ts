import { STATEMENT_TYPE, type ResourceDescriptor, type Statement } from "../attest/index.js";

// provenix's reproducibility predicate; documented in docs/reproducibility.md.
export const REPRODUCIBILITY_V1 = "https://provenix.dev/attestations/reproducibility/v1";

/** Where a build of an output came from. */
export type BuildOrigin = "local" | "substituted" | "rebuild";

export interface OutputBuild {
  /** sha256 of the output's NAR, lower-case hex. */
  readonly narHash: string;
  readonly narSize?: number;
  /** "local"/"substituted": the copy in the store (Nix's `ultimate` flag); "rebuild": this run. */
  readonly origin: BuildOrigin;
}

/**
 * - reproducible: the rebuild's NAR hash equals the stored one (Nix compared them);
 * - differs: the rebuild differs, kept by Nix at `<path>.check`;
 * - not-compared: Nix stops at the first differing output of a derivation.
 */
export type OutputResult = "reproducible" | "differs" | "not-compared";

export interface OutputCheck {
  readonly name: string;
  readonly path: string;
  readonly result: OutputResult;
  /** The stored copy first, then the rebuild when it was compared. */
  readonly builds: readonly OutputBuild[];
}

export type Verdict = "reproducible" | "unreproducible";

export interface ReproducibilityPredicate {
  readonly derivation: { path: string; digest: { sha256: string } };
  readonly verdict: Verdict;
  readonly outputs: readonly OutputCheck[];
  readonly rebuilder: {
    /** The builder id of whoever rebuilt it, as in provenance's runDetails.builder.id. */
    readonly id: string;
    readonly nixVersion: string;
    readonly system: string;
    readonly provenixVersion: string;
  };
  /** How the rebuild was done. */
  readonly method: string;
  readonly timeStarted: string;
  readonly timeFinished: string;
  /** Reports on the differences, by digest (kept in the attestation store). */
  readonly reports?: readonly ResourceDescriptor[];
}

export interface ReproducibilityFacts {
  readonly drvPath: string;
  readonly drvSha256: string;
  readonly outputs: readonly OutputCheck[];
  readonly rebuilderId: string;
  readonly nixVersion: string;
  readonly system: string;
  readonly provenixVersion: string;
  readonly started: Date;
  readonly finished: Date;
  readonly reports?: readonly ResourceDescriptor[];
}

export const REBUILD_METHOD = "nix-store --realise --check";

/** The verdict over a derivation's outputs: reproducible only when every output was. */
export function verdictOf(outputs: readonly OutputCheck[]): Verdict {
  return outputs.length > 0 && outputs.every((o) => o.result === "reproducible")
    ? "reproducible"
    : "unreproducible";
}

/**
 * The in-toto statement of a rebuild. Its subjects are the outputs as they are
 * in the store (the first build), so the attestation is found by the artifact
 * it speaks about; the rebuild's own hashes are in the predicate.
 */
export function reproducibilityStatement(
  f: ReproducibilityFacts,
): Statement<ReproducibilityPredicate> {
  const subject: ResourceDescriptor[] = f.outputs.flatMap((o) => {
    const stored = o.builds[0];
    return stored ? [{ name: o.path, digest: { sha256: stored.narHash } }] : [];
  });
  return {
    _type: STATEMENT_TYPE,
    subject,
    predicateType: REPRODUCIBILITY_V1,
    predicate: {
      derivation: { path: f.drvPath, digest: { sha256: f.drvSha256 } },
      verdict: verdictOf(f.outputs),
      outputs: f.outputs,
      rebuilder: {
        id: f.rebuilderId,
        nixVersion: f.nixVersion,
        system: f.system,
        provenixVersion: f.provenixVersion,
      },
      method: REBUILD_METHOD,
      timeStarted: f.started.toISOString(),
      timeFinished: f.finished.toISOString(),
      ...(f.reports && f.reports.length > 0 ? { reports: f.reports } : {}),
    },
  };
}

/**
 * The NAR hashes a reproducibility statement says its signer produced itself,
 * per output path: the rebuild, and the stored copy when it was built locally.
 * Malformed predicates yield nothing.
 */
export function ownBuilds(statement: Statement): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  const p = statement.predicate as { outputs?: unknown } | undefined;
  if (statement.predicateType !== REPRODUCIBILITY_V1 || !Array.isArray(p?.outputs)) return out;
  for (const o of p.outputs as unknown[]) {
    const { path, builds } = (o ?? {}) as { path?: unknown; builds?: unknown };
    if (typeof path !== "string" || !Array.isArray(builds)) continue;
    for (const b of builds as unknown[]) {
      const { narHash, origin } = (b ?? {}) as { narHash?: unknown; origin?: unknown };
      if (typeof narHash !== "string" || (origin !== "local" && origin !== "rebuild")) continue;
      const set = out.get(path) ?? new Set<string>();
      set.add(narHash);
      out.set(path, set);
    }
  }
  return out;
}
