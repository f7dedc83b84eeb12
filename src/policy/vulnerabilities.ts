// require.vulnerabilities: a closure's scan (provenix vulns) against the policy.
// Pure: the caller scans; this decides which paths fail and why.
import type { TriagedFinding } from "../vulns/index.js";
import type { PathResult, PolicyResult } from "./evaluate.js";

const RATINGS = ["NONE", "LOW", "MEDIUM", "HIGH", "CRITICAL"];

export interface VulnerabilityRequirement {
  /** Affected findings rated above this fail; NONE: every affected finding fails. */
  readonly maxSeverity: string;
  /** Whether an untriaged affected finding fails whatever its severity. */
  readonly untriagedFails: boolean;
  readonly maxDatabaseAgeDays?: number;
  /** VEX statements older than this are expired and not applied. */
  readonly vexMaxAgeDays?: number;
}

/** Why a finding fails the requirement, or undefined when it does not. */
export function findingProblem(
  f: TriagedFinding,
  req: VulnerabilityRequirement,
): string | undefined {
  if (f.status !== "affected" && f.status !== "under_investigation") return undefined;
  const untriaged = f.vex === undefined || f.status === "under_investigation";
  const above =
    f.rating === "UNKNOWN" || RATINGS.indexOf(f.rating) > RATINGS.indexOf(req.maxSeverity);
  if (untriaged && req.untriagedFails) {
    return `${f.advisory} (${f.rating}) affects ${f.package.name}-${f.package.version}, untriaged: ${f.evidence}`;
  }
  if (above) {
    return `${f.advisory} (${f.rating}) affects ${f.package.name}-${f.package.version}, above ${req.maxSeverity}: ${f.evidence}`;
  }
  return undefined;
}

/**
 * The policy result with the scan applied: each path of a failing finding's package
 * fails with the advisory as its reason (the roots, when the package has no path in
 * the result, as a build-closure derivation has none); a database older than the
 * limit fails everything.
 */
export function applyVulnerabilities(
  result: PolicyResult,
  findings: readonly TriagedFinding[],
  req: VulnerabilityRequirement,
  db: { updatedAt?: Date; now: Date },
): PolicyResult {
  if (req.maxDatabaseAgeDays !== undefined) {
    const age = db.updatedAt ? (db.now.getTime() - db.updatedAt.getTime()) / 86_400_000 : Infinity;
    if (age > req.maxDatabaseAgeDays) {
      return {
        ...result,
        ok: false,
        reason: db.updatedAt
          ? `the vulnerability database was last updated ${db.updatedAt.toISOString()}, more than ${req.maxDatabaseAgeDays} day(s) ago`
          : "the vulnerability database was never updated",
      };
    }
  }
  const reasons = new Map<string, string[]>();
  const inResult = new Set(result.paths.map((p) => p.path));
  const roots = result.paths.filter((p) => p.root).map((p) => p.path);
  for (const f of findings) {
    const problem = findingProblem(f, req);
    if (!problem) continue;
    const where = f.package.paths.filter((p) => inResult.has(p));
    for (const p of where.length > 0 ? where : roots)
      reasons.set(p, [...(reasons.get(p) ?? []), problem]);
  }
  const paths = result.paths.map((p): PathResult => {
    const r = reasons.get(p.path);
    if (!r) return p;
    return {
      ...p,
      ok: false,
      reason: p.ok ? r.join("; ") : `${p.reason ?? "failed"}; ${r.join("; ")}`,
    };
  });
  return { ...result, ok: result.ok && paths.every((p) => p.ok), paths };
}
