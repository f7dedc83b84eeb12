// Which packages of a closure known advisories affect, with the rule and evidence of
// each decision: matched, fixed by a patch, not comparable, not matched. Pure.
import {
  fixedVersions,
  inRange,
  versionAffected,
  type Advisory,
  type AffectedPackage,
  type Severity,
} from "./advisory.js";
import { cpeKey, nameKey, parseCpe, purlKey, repoKey, sourceFileName } from "./identifiers.js";
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
  /** CPE 2.3 names from its metadata (nixpkgs' meta.identifiers.cpe and possibleCPEs). */
  readonly cpes?: readonly string[];
  /** Package URLs from its metadata (meta.identifiers.purl, purls). */
  readonly purls?: readonly string[];
  /** nixpkgs' meta.knownVulnerabilities: what the package's maintainers know. */
  readonly knownVulnerabilities?: readonly string[];
}

/** The lookup keys a package answers to: its name, its CPEs' and purls' keys, its sources' forge repositories and archive names. */
export function packageKeys(p: Package): string[] {
  const keys = [nameKey(p.name)];
  for (const c of p.cpes ?? []) {
    const cpe = parseCpe(c);
    if (cpe) keys.push(cpeKey(cpe));
  }
  for (const u of p.purls ?? []) {
    const k = purlKey(u);
    if (k) keys.push(k);
  }
  for (const url of p.sourceUrls) {
    const repo = repoKey(url);
    if (repo) keys.push(repo);
    const file = sourceFileName(url);
    if (file) keys.push(nameKey(file.name));
  }
  return [...new Set(keys)];
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
  readonly decision:
    | "not-comparable"
    | "unstable-version"
    | "unevaluated-range"
    | "vendor-mismatch"
    | "distribution-record";
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

/** How an advisory's affected entry names a package, and the version to compare. */
interface Link {
  readonly rule: string;
  readonly evidence: string;
  readonly version: string;
}

/** Vendors of the CPEs a package's metadata or an advisory entry gives. */
const cpeVendors = (cpes: readonly string[]): Set<string> =>
  new Set(cpes.flatMap((c) => parseCpe(c)?.vendor ?? []));

/**
 * The strongest way an entry names the package: purl, CPE (vendor and product),
 * name, the forge repository of one of its sources, the name in a source archive's
 * file name. A name match whose vendor contradicts the package's own CPE vendor is
 * no match, and says so.
 */
function link(p: Package, a: AffectedPackage): { link?: Link; mismatch?: string } {
  const entryPurl = a.purl !== undefined ? purlKey(a.purl) : undefined;
  const purl = entryPurl && (p.purls ?? []).find((u) => purlKey(u) === entryPurl);
  if (purl) return { link: { rule: "purl", evidence: `${a.purl} = ${purl}`, version: p.version } };
  const entryCpes = a.cpes.flatMap((x) => {
    const c = parseCpe(x);
    return c ? [{ name: x, key: cpeKey(c) }] : [];
  });
  for (const c of p.cpes ?? []) {
    const mine = parseCpe(c);
    const theirs = mine && entryCpes.find((x) => x.key === cpeKey(mine));
    if (theirs)
      return { link: { rule: "CPE", evidence: `${theirs.name} ~ ${c}`, version: p.version } };
  }
  const entryVendors = cpeVendors(a.cpes);
  if (a.vendor) entryVendors.add(a.vendor);
  const mine = cpeVendors(p.cpes ?? []);
  const vendorClash =
    mine.size > 0 && entryVendors.size > 0 && ![...entryVendors].some((v) => mine.has(v));
  const who = `${a.vendor ? `${a.vendor} ` : ""}${a.names.join("/")}${a.ecosystem ? ` (${a.ecosystem})` : ""}`;
  const clash = `${who}: the vendor ${[...entryVendors].join("/")} is not the package's CPE vendor ${[...mine].join("/")}`;
  if (a.names.includes(nameKey(p.name))) {
    if (vendorClash) return { mismatch: clash };
    return {
      link: { rule: "name and version", evidence: `${who} = ${p.name}`, version: p.version },
    };
  }
  const entryRepo = a.repo !== undefined ? repoKey(a.repo) : undefined;
  for (const url of p.sourceUrls) {
    if (entryRepo !== undefined && entryRepo === repoKey(url))
      return {
        link: {
          rule: "source repository",
          evidence: `${who} is developed at ${a.repo}, and ${p.name} is built from ${url}`,
          version: p.version,
        },
      };
  }
  for (const url of p.sourceUrls) {
    const file = sourceFileName(url);
    if (file && a.names.includes(nameKey(file.name))) {
      if (vendorClash) return { mismatch: clash };
      return {
        link: {
          rule: "source file name",
          evidence: `${who} = ${file.name}, the name in ${p.name}'s source ${url}`,
          version: file.version,
        },
      };
    }
  }
  return {};
}

/** Match one package against advisories that may name it (packageKeys), and report its meta.knownVulnerabilities. */
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
    const decide = (decision: Decision["decision"], reason: string) =>
      decisions.push({ advisory: adv.id, package: who, decision, reason });
    const linked: { a: AffectedPackage; link: Link }[] = [];
    for (const a of adv.affected) {
      const l = link(p, a);
      if (l.mismatch) decide("vendor-mismatch", l.mismatch);
      if (l.link) linked.push({ a, link: l.link });
    }
    if (linked.length === 0) continue;
    let hit: { a: AffectedPackage; link: Link; why: string } | undefined;
    let snapshot = false;
    const distributionSays: { distribution: string; why: string }[] = [];
    for (const { a, link: l } of linked) {
      if (isUnstableVersion(p.name, l.version)) {
        snapshot = true;
        continue;
      }
      if (a.distribution)
        distributionSays.push(
          ...a.problems.map((why) => ({ distribution: a.distribution ?? "", why })),
        );
      else for (const problem of a.problems) decide("unevaluated-range", problem);
      const v = versionAffected(a, l.version);
      const fix = a.distribution && !v.affected ? pastFix(a, l.version) : undefined;
      if (a.distribution && fix !== undefined)
        distributionSays.push({
          distribution: a.distribution,
          why: `${l.version} is not below its fixed build's upstream version ${fix}`,
        });
      if (v.problem) decide("not-comparable", v.problem);
      if (v.affected) {
        const why = a.distribution
          ? `${v.why}; the versions of ${a.distribution} are that distribution's builds, compared by their upstream part`
          : v.why;
        hit = { a, link: l, why };
        break;
      }
    }
    // Where an upstream entry names the package too, it decides; a distribution's alone is reported.
    if (!hit && distributionSays.length > 0 && linked.every(({ a }) => a.distribution))
      decide(
        "distribution-record",
        `only records of distributions' own builds name it (compared by the upstream part of their versions; their fixes may be backports that upstream ${p.version} lacks), and they do not say it is affected: ${grouped(distributionSays)}`,
      );
    if (!hit) {
      if (snapshot)
        decide(
          "unstable-version",
          `${p.version} is a development snapshot (a date, not a release): release ranges are not compared with it`,
        );
      continue;
    }
    const ids = [adv.id, ...adv.aliases].map((i) => i.toUpperCase());
    const patch = ids.map((i) => patched.get(i)).find((x) => x !== undefined);
    findings.push({
      advisory: adv.id,
      aliases: adv.aliases,
      ...(adv.summary ? { summary: adv.summary } : {}),
      severity: adv.severity,
      rating: highestRating(adv.severity),
      package: packageRef(p),
      status: patch ? "fixed" : "affected",
      rule: hit.link.rule,
      evidence: `${hit.link.evidence}; ${hit.link.version}: ${hit.why}`,
      ...(patch ? { reason: `the derivation applies ${patch}` } : {}),
      fixedVersions: fixedVersions(hit.a),
    });
  }
  findings.push(...knownVulnerabilities(p, findings));
  return { findings, decisions };
}

const packageRef = (p: Package): Finding["package"] => ({
  name: p.name,
  version: p.version,
  ...(p.drvPath ? { drvPath: p.drvPath } : {}),
  paths: p.paths,
});

/** The fixed version of a range the version would lie in but for its fix: from there on, only a fix says it is not affected. */
function pastFix(a: AffectedPackage, version: string): string | undefined {
  for (const r of a.ranges) {
    if (r.fixed === undefined) continue;
    if (inRange(version, { ...r, fixed: undefined }) === true) return r.fixed;
  }
  return undefined;
}

/** "A: x", "B: x", "C: y" as "A, B: x; C: y". */
function grouped(says: readonly { distribution: string; why: string }[]): string {
  const by = new Map<string, string[]>();
  for (const s of says) by.set(s.why, [...(by.get(s.why) ?? []), s.distribution]);
  return [...by].map(([why, ds]) => `${[...new Set(ds)].join(", ")}: ${why}`).join("; ");
}

/** The advisory id of a meta.knownVulnerabilities entry that names no CVE. */
export const KNOWN_VULNERABILITY = "nixpkgs:knownVulnerabilities";

/**
 * nixpkgs' meta.knownVulnerabilities, one finding per entry: the CVE ids it names
 * (the first is the finding's id), else the entry itself. An entry whose CVE a
 * database finding already reports for the package adds nothing.
 */
function knownVulnerabilities(p: Package, found: readonly Finding[]): Finding[] {
  const reported = new Set(
    found.flatMap((f) => [f.advisory, ...f.aliases]).map((i) => i.toUpperCase()),
  );
  const out: Finding[] = [];
  for (const entry of p.knownVulnerabilities ?? []) {
    const ids = [...new Set([...entry.matchAll(CVE_ID)].map((m) => m[0].toUpperCase()))];
    if (ids.length > 0 && ids.some((i) => reported.has(i))) continue;
    out.push({
      advisory: ids[0] ?? KNOWN_VULNERABILITY,
      aliases: ids.slice(1),
      summary: entry,
      severity: [],
      rating: "UNKNOWN",
      package: packageRef(p),
      status: "affected",
      rule: "meta.knownVulnerabilities",
      evidence: `the package's meta.knownVulnerabilities says: ${entry}`,
      fixedVersions: [],
    });
  }
  return out;
}
