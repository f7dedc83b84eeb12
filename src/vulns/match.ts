// Which packages of a closure known advisories affect, with the rule and evidence of
// each decision: matched, fixed by a patch, not comparable, not matched. Pure.
import {
  fixedVersions,
  versionAffected,
  type Advisory,
  type AffectedPackage,
  type Severity,
} from "./advisory.js";
import { isUnstableVersion } from "./version.js";

export interface Package {
  /** pname, as Nix users know it. */
  readonly name: string;
  readonly version: string;
  readonly drvPath?: string;
  /** The store paths of the package in the closure. */
  readonly paths: readonly string[];
  /** File names of the derivation's patches (`patches`, fetchpatch outputs). */
  readonly patches: readonly string[];
  /** URLs of its fixed-output sources. */
  readonly sourceUrls: readonly string[];
}

export type FindingStatus = "affected" | "fixed" | "not_affected" | "under_investigation";

export interface Finding {
  readonly advisory: string;
  readonly aliases: readonly string[];
  readonly summary?: string;
  readonly severity: readonly Severity[];
  /** The highest rating among the severities; UNKNOWN when none is given. */
  readonly rating: string;
  readonly package: { name: string; version: string; drvPath?: string; paths: readonly string[] };
  readonly status: FindingStatus;
  /** The matching rule and its evidence. */
  readonly rule: string;
  readonly evidence: string;
  /** Why the status (a patch, a VEX statement). */
  readonly reason?: string;
  readonly fixedVersions: readonly string[];
}

/** A decision that did not produce a finding, listed with its reason. */
export interface Decision {
  readonly advisory: string;
  readonly package: string;
  readonly decision: "not-comparable" | "unstable-version" | "unevaluated-range";
  readonly reason: string;
}

const RATINGS = ["NONE", "LOW", "MEDIUM", "HIGH", "CRITICAL"];

export function highestRating(severity: readonly Severity[]): string {
  const known = severity
    .map((s) => s.rating)
    .filter((r): r is string => r !== undefined && RATINGS.includes(r));
  return known.sort((a, b) => RATINGS.indexOf(b) - RATINGS.indexOf(a))[0] ?? "UNKNOWN";
}

/** Whether a rating is at or above a threshold; UNKNOWN counts as above every threshold. */
export function atOrAbove(rating: string, threshold: string): boolean {
  if (rating === "UNKNOWN") return true;
  return RATINGS.indexOf(rating) >= RATINGS.indexOf(threshold);
}

const CVE_ID = /CVE-\d{4}-\d{4,}/gi;

/** The CVE ids a package's patches name (file names such as CVE-2023-38545.patch). */
export function patchedCves(p: Package): Map<string, string> {
  const out = new Map<string, string>();
  for (const patch of p.patches)
    for (const m of patch.matchAll(CVE_ID)) out.set(m[0].toUpperCase(), patch);
  return out;
}

function nameMatches(a: AffectedPackage, name: string): boolean {
  return a.names.includes(name.toLowerCase());
}

/** Match one package against advisories that name it. */
export function matchPackage(
  p: Package,
  advisories: readonly Advisory[],
): { findings: Finding[]; decisions: Decision[] } {
  const findings: Finding[] = [];
  const decisions: Decision[] = [];
  const patched = patchedCves(p);
  const who = `${p.name}-${p.version}`;
  for (const adv of advisories) {
    if (adv.withdrawn) continue;
    const entries = adv.affected.filter((a) => nameMatches(a, p.name));
    if (entries.length === 0) continue;
    if (isUnstableVersion(p.name, p.version)) {
      decisions.push({
        advisory: adv.id,
        package: who,
        decision: "unstable-version",
        reason: `${p.version} is a development snapshot (a date, not a release): release ranges are not compared with it`,
      });
      continue;
    }
    let hit: { a: AffectedPackage; why: string } | undefined;
    for (const a of entries) {
      for (const problem of a.problems) {
        decisions.push({
          advisory: adv.id,
          package: who,
          decision: "unevaluated-range",
          reason: problem,
        });
      }
      const v = versionAffected(a, p.version);
      if (v.problem)
        decisions.push({
          advisory: adv.id,
          package: who,
          decision: "not-comparable",
          reason: v.problem,
        });
      if (v.affected) {
        hit = { a, why: v.why };
        break;
      }
    }
    if (!hit) continue;
    const ids = [adv.id, ...adv.aliases].map((i) => i.toUpperCase());
    const patch = ids.map((i) => patched.get(i)).find((x) => x !== undefined);
    findings.push({
      advisory: adv.id,
      aliases: adv.aliases,
      ...(adv.summary ? { summary: adv.summary } : {}),
      severity: adv.severity,
      rating: highestRating(adv.severity),
      package: {
        name: p.name,
        version: p.version,
        ...(p.drvPath ? { drvPath: p.drvPath } : {}),
        paths: p.paths,
      },
      status: patch ? "fixed" : "affected",
      rule: "name and version",
      evidence: `${hit.a.vendor ? `${hit.a.vendor} ` : ""}${hit.a.names.join("/")}${hit.a.ecosystem ? ` (${hit.a.ecosystem})` : ""} = ${p.name}; ${p.version}: ${hit.why}`,
      ...(patch ? { reason: `the derivation applies ${patch}` } : {}),
      fixedVersions: fixedVersions(hit.a),
    });
  }
  return { findings, decisions };
}
