// Advisories from OSV and CVE JSON 5 records, in one shape, and whether a package
// version is affected. Pure: records are untrusted input, checked field by field.
import { CodedError } from "../error.js";
import { concreteCpeVersion, cpeKey, nameKey, parseCpe, purlKey, repoKey } from "./identifiers.js";
import { compareNixVersions, compareSemver } from "./version.js";

export type VulnErrorCode = "MALFORMED_RECORD" | "MALFORMED_VEX" | "DATABASE";
export class VulnError extends CodedError<VulnErrorCode> {}

export type Scheme = "nix" | "semver";

export interface VersionRange {
  /** How versions of this range compare: Nix's ordering or SemVer. */
  readonly scheme: Scheme;
  readonly introduced?: string;
  /** The range starts after `introduced`, not at it (NVD's versionStartExcluding). */
  readonly introducedExcluded?: boolean;
  readonly fixed?: string;
  readonly lastAffected?: string;
}

export interface AffectedPackage {
  /** Names a Nix package may have for this (lower case): product, package name. */
  readonly names: readonly string[];
  readonly vendor?: string;
  readonly ecosystem?: string;
  readonly purl?: string;
  readonly cpes: readonly string[];
  /** The source repository the record names (CVE `repo`, an OSV GIT range's `repo`). */
  readonly repo?: string;
  /**
   * When the entry is about a distribution's own builds (an OSV Debian, Ubuntu, ...
   * ecosystem; CVE rpm or deb versions): which. Its versions are then the upstream
   * part of the distribution's (epoch and revision dropped), and its fixes may be
   * backports that an upstream version of that number does not have.
   */
  readonly distribution?: string;
  /** Versions listed as affected one by one. */
  readonly versions: readonly string[];
  readonly ranges: readonly VersionRange[];
  /** Versions listed as not affected (CVE `status: unaffected`). */
  readonly unaffected: readonly VersionRange[];
  /** CVE defaultStatus: what holds for versions no entry covers. */
  readonly defaultStatus: "affected" | "unaffected" | "unknown";
  /** Ranges that cannot be evaluated (git commits, unknown schemes): reported, never matched silently. */
  readonly problems: readonly string[];
}

export interface Severity {
  readonly type: string;
  readonly vector?: string;
  readonly score?: number;
  /** CRITICAL, HIGH, MEDIUM, LOW, NONE. */
  readonly rating?: string;
}

export interface Advisory {
  readonly id: string;
  readonly source: "osv" | "cve";
  readonly aliases: readonly string[];
  readonly modified: string;
  readonly summary?: string;
  readonly severity: readonly Severity[];
  readonly affected: readonly AffectedPackage[];
  readonly withdrawn?: string;
}

const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const obj = (v: unknown): Record<string, unknown> =>
  v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {};

/** A CVSS v3 base score's qualitative rating (CVSS v3.1 specification, 5). */
export function ratingOf(score: number): string {
  return score === 0
    ? "NONE"
    : score < 4
      ? "LOW"
      : score < 7
        ? "MEDIUM"
        : score < 9
          ? "HIGH"
          : "CRITICAL";
}

// --- distributions' own builds ---------------------------------------------------

const DISTRIBUTION_ECOSYSTEM =
  /^(AlmaLinux|Alpine|Arch Linux|Azure Linux|Chainguard|Debian|Gentoo|Mageia|Mariner|openEuler|openSUSE|Photon OS|Red Hat|Rocky Linux|SUSE|Ubuntu|Wolfi)(:|$)/;
const DISTRIBUTION_VERSION_TYPES = ["rpm", "deb", "dpkg", "apk", "ebuild", "alpm"];

/** The upstream part of a distribution's package version: 1:2.28-225.el8 is 2.28, 1.1.1f-1ubuntu2.21 is 1.1.1f. */
export function upstreamPart(v: string): string {
  const noEpoch = v.replace(/^[0-9]+:/, "");
  const dash = noEpoch.lastIndexOf("-");
  return dash > 0 ? noEpoch.slice(0, dash) : noEpoch;
}

function toUpstream(r: VersionRange): VersionRange {
  const up = (x: string | undefined) => (x === undefined ? {} : { v: upstreamPart(x) });
  return {
    ...r,
    ...(r.introduced !== undefined ? { introduced: up(r.introduced).v } : {}),
    ...(r.fixed !== undefined ? { fixed: up(r.fixed).v } : {}),
    ...(r.lastAffected !== undefined ? { lastAffected: up(r.lastAffected).v } : {}),
  };
}

/**
 * An entry about a distribution's builds, with its versions reduced to their
 * upstream part. A range with no bound at all (OSV's introduced 0 and no fix: that
 * release has no fixed build) says nothing of upstream versions: not compared.
 */
function asDistribution(a: AffectedPackage, distribution: string): AffectedPackage {
  const unbounded = (r: VersionRange) =>
    r.introduced === undefined && r.fixed === undefined && r.lastAffected === undefined;
  const dropped = a.ranges.filter(unbounded).length;
  return {
    ...a,
    distribution,
    versions: [...new Set(a.versions.map(upstreamPart))],
    ranges: a.ranges.filter((r) => !unbounded(r)).map(toUpstream),
    unaffected: a.unaffected.map(toUpstream),
    problems: [
      ...a.problems,
      ...(dropped > 0
        ? ["no build of it is fixed yet, which says nothing of upstream versions"]
        : []),
    ],
  };
}

// --- OSV (https://ossf.github.io/osv-schema/) -------------------------------------

export function parseOsv(json: unknown, what: string): Advisory {
  const r = obj(json);
  const id = str(r.id);
  const modified = str(r.modified);
  if (!id || !modified) {
    throw new VulnError("MALFORMED_RECORD", `${what}: not an OSV record (needs id and modified)`);
  }
  const severity: Severity[] = arr(r.severity).map((s) => {
    const o = obj(s);
    const vector = str(o.score) ?? "";
    const score = cvssBaseScore(vector);
    return {
      type: str(o.type) ?? "unknown",
      vector,
      ...(score !== undefined ? { score, rating: ratingOf(score) } : {}),
    };
  });
  const dbRating = str(obj(r.database_specific).severity)?.toUpperCase();
  if (severity.length === 0 && dbRating)
    severity.push({ type: "database_specific", rating: dbRating });
  const affected = arr(r.affected).map((a, i): AffectedPackage => {
    const o = obj(a);
    const pkg = obj(o.package);
    const name = str(pkg.name);
    const ecosystem = str(pkg.ecosystem);
    const purl = str(pkg.purl);
    const problems: string[] = [];
    const ranges: VersionRange[] = [];
    let repo: string | undefined;
    for (const [k, rg] of arr(o.ranges).entries()) {
      const ro = obj(rg);
      const type = str(ro.type);
      repo ??= str(ro.repo);
      if (type !== "SEMVER" && type !== "ECOSYSTEM") {
        problems.push(
          `affected[${i}].ranges[${k}] is a ${type ?? "untyped"} range (commits, not versions): not evaluated`,
        );
        continue;
      }
      const scheme: Scheme = type === "SEMVER" ? "semver" : "nix";
      // An open range: its lower bound, "" for OSV's introduced "0" (since the first version).
      let open: string | undefined;
      const from = (lo: string) => (lo === "" ? {} : { introduced: lo });
      for (const e of arr(ro.events)) {
        const eo = obj(e);
        if (str(eo.introduced) !== undefined) {
          if (open !== undefined) ranges.push({ scheme, ...from(open) });
          open = str(eo.introduced) === "0" ? "" : str(eo.introduced);
        } else if (str(eo.fixed) !== undefined) {
          ranges.push({ scheme, ...from(open ?? ""), fixed: str(eo.fixed) });
          open = undefined;
        } else if (str(eo.last_affected) !== undefined) {
          ranges.push({ scheme, ...from(open ?? ""), lastAffected: str(eo.last_affected) });
          open = undefined;
        } else if (str(eo.limit) !== undefined) {
          // limit bounds git ranges only; in a version range it is not meaningful.
          problems.push(`affected[${i}].ranges[${k}] has a limit event: ignored`);
        } else {
          throw new VulnError(
            "MALFORMED_RECORD",
            `${what}: ${id}: affected[${i}].ranges[${k}] has an unknown event`,
          );
        }
      }
      if (open !== undefined) ranges.push({ scheme, ...from(open) });
    }
    const entry: AffectedPackage = {
      names: name ? [name.toLowerCase()] : [],
      ...(ecosystem ? { ecosystem } : {}),
      ...(purl ? { purl } : {}),
      cpes: [],
      ...(repo ? { repo } : {}),
      versions: arr(o.versions).filter((v): v is string => typeof v === "string"),
      ranges,
      unaffected: [],
      defaultStatus: "unaffected",
      problems,
    };
    return ecosystem && DISTRIBUTION_ECOSYSTEM.test(ecosystem)
      ? asDistribution(entry, ecosystem)
      : entry;
  });
  const summary = str(r.summary) ?? str(r.details)?.split("\n")[0];
  return {
    id,
    source: "osv",
    aliases: arr(r.aliases).filter((a): a is string => typeof a === "string"),
    modified,
    ...(summary ? { summary } : {}),
    severity,
    affected,
    ...(str(r.withdrawn) ? { withdrawn: str(r.withdrawn) } : {}),
  };
}

// --- CVE JSON 5 (https://github.com/CVEProject/cve-schema) -------------------------

export function parseCve(json: unknown, what: string): Advisory {
  const r = obj(json);
  const meta = obj(r.cveMetadata);
  const id = str(meta.cveId);
  if (r.dataType !== "CVE_RECORD" || !id) {
    throw new VulnError(
      "MALFORMED_RECORD",
      `${what}: not a CVE JSON 5 record (needs dataType CVE_RECORD and cveMetadata.cveId)`,
    );
  }
  const containers = obj(r.containers);
  const cna = obj(containers.cna);
  const adp = arr(containers.adp).map(obj);
  const severity: Severity[] = [];
  for (const c of [cna, ...adp]) {
    for (const m of arr(c.metrics)) {
      for (const key of ["cvssV4_0", "cvssV3_1", "cvssV3_0"]) {
        const v = obj(obj(m)[key]);
        const vector = str(v.vectorString);
        if (!vector) continue;
        const score = typeof v.baseScore === "number" ? v.baseScore : undefined;
        severity.push({
          type: key,
          vector,
          ...(score !== undefined ? { score } : {}),
          ...(str(v.baseSeverity)
            ? { rating: (str(v.baseSeverity) as string).toUpperCase() }
            : score !== undefined
              ? { rating: ratingOf(score) }
              : {}),
        });
      }
    }
  }
  const affected: AffectedPackage[] = [];
  for (const c of [cna, ...adp]) {
    affected.push(...cpeApplicability(c));
    for (const [i, a] of arr(c.affected).entries()) {
      const o = obj(a);
      const names = [str(o.product), str(o.packageName)]
        .filter((n): n is string => n !== undefined && n !== "" && n !== "n/a")
        .map((n) => n.toLowerCase());
      const problems: string[] = [];
      const ranges: VersionRange[] = [];
      const unaffected: VersionRange[] = [];
      const versions: string[] = [];
      for (const [k, v] of arr(o.versions).entries()) {
        const vo = obj(v);
        const version = str(vo.version);
        const status = str(vo.status);
        const type = str(vo.versionType) ?? "custom";
        if (
          !version ||
          (status !== "affected" && status !== "unaffected" && status !== "unknown")
        ) {
          throw new VulnError(
            "MALFORMED_RECORD",
            `${what}: ${id}: affected[${i}].versions[${k}] needs version and status`,
          );
        }
        if (status === "unknown") continue;
        if (type === "git") {
          problems.push(
            `affected[${i}].versions[${k}] is a git range (commits, not versions): not evaluated`,
          );
          continue;
        }
        const scheme: Scheme = type === "semver" ? "semver" : "nix";
        const lessThan = str(vo.lessThan);
        const lessThanOrEqual = str(vo.lessThanOrEqual);
        const open = (b: string | undefined) => b === undefined || b === "*";
        const introduced = version === "0" || version === "*" ? undefined : version;
        if (lessThan !== undefined || lessThanOrEqual !== undefined) {
          const range: VersionRange = {
            scheme,
            ...(introduced !== undefined ? { introduced } : {}),
            ...(lessThan !== undefined && !open(lessThan) ? { fixed: lessThan } : {}),
            ...(lessThanOrEqual !== undefined && !open(lessThanOrEqual)
              ? { lastAffected: lessThanOrEqual }
              : {}),
          };
          (status === "affected" ? ranges : unaffected).push(range);
        } else if (version === "*") {
          (status === "affected" ? ranges : unaffected).push({ scheme });
        } else if (status === "affected") versions.push(version);
        else unaffected.push({ scheme, introduced: version, lastAffected: version });
      }
      const ds = str(o.defaultStatus);
      const distro = arr(o.versions)
        .map((v) => str(obj(v).versionType))
        .find((t) => t !== undefined && DISTRIBUTION_VERSION_TYPES.includes(t));
      const entry: AffectedPackage = {
        names,
        ...(str(o.vendor) && str(o.vendor) !== "n/a"
          ? { vendor: (str(o.vendor) as string).toLowerCase() }
          : {}),
        ...(str(o.packageURL) ? { purl: str(o.packageURL) } : {}),
        cpes: arr(o.cpes).filter((x): x is string => typeof x === "string"),
        ...(str(o.repo) ? { repo: str(o.repo) } : {}),
        versions,
        ranges,
        unaffected,
        defaultStatus: ds === "affected" || ds === "unaffected" ? ds : "unknown",
        problems,
      };
      affected.push(
        distro
          ? asDistribution(
              entry,
              `${distro} packages of ${[str(o.vendor), str(o.product)].filter((x) => x).join(" ")}`,
            )
          : entry,
      );
    }
  }
  const en = arr(cna.descriptions)
    .map(obj)
    .find((d) => str(d.lang)?.startsWith("en"));
  const summary = str(cna.title) ?? str(en?.value)?.split(/\r?\n/)[0];
  return {
    id,
    source: "cve",
    aliases: [],
    modified: str(meta.dateUpdated) ?? str(meta.datePublished) ?? "",
    ...(summary ? { summary } : {}),
    severity,
    affected,
    ...(meta.state === "REJECTED" ? { withdrawn: str(meta.dateRejected) ?? "rejected" } : {}),
  };
}

/**
 * The vulnerable CPE matches of a container's cpeApplicability (CVE 5.1, as NVD
 * writes them), one entry each: the CPE's product and vendor, and its version
 * bounds (versionStart/EndIncluding/Excluding), else the CPE's own version, else
 * every version.
 */
function cpeApplicability(c: Record<string, unknown>): AffectedPackage[] {
  const out: AffectedPackage[] = [];
  for (const a of arr(c.cpeApplicability)) {
    for (const n of arr(obj(a).nodes)) {
      for (const m of arr(obj(n).cpeMatch)) {
        const mo = obj(m);
        const criteria = str(mo.criteria);
        const cpe = criteria ? parseCpe(criteria) : undefined;
        if (mo.vulnerable !== true || !criteria || !cpe) continue;
        const startIn = str(mo.versionStartIncluding);
        const startEx = str(mo.versionStartExcluding);
        const endEx = str(mo.versionEndExcluding);
        const endIn = str(mo.versionEndIncluding);
        const bounded = [startIn, startEx, endEx, endIn].some((x) => x !== undefined);
        const range: VersionRange = {
          scheme: "nix",
          ...((startIn ?? startEx) !== undefined ? { introduced: startIn ?? startEx } : {}),
          ...(startIn === undefined && startEx !== undefined ? { introducedExcluded: true } : {}),
          ...(endEx !== undefined ? { fixed: endEx } : {}),
          ...(endIn !== undefined ? { lastAffected: endIn } : {}),
        };
        out.push({
          names: [cpe.product],
          vendor: cpe.vendor,
          cpes: [criteria],
          versions: !bounded && concreteCpeVersion(cpe.version) ? [cpe.version] : [],
          ranges: bounded || !concreteCpeVersion(cpe.version) ? [range] : [],
          unaffected: [],
          defaultStatus: "unaffected",
          problems: [],
        });
      }
    }
  }
  return out;
}

/** The lookup keys of an affected entry: its names, CPE vendor:product, purl, forge repository. */
export function affectedKeys(a: AffectedPackage): string[] {
  const keys = a.names.map(nameKey);
  for (const c of a.cpes) {
    const p = parseCpe(c);
    if (p) keys.push(cpeKey(p));
  }
  const purl = a.purl ? purlKey(a.purl) : undefined;
  if (purl) keys.push(purl);
  const repo = a.repo ? repoKey(a.repo) : undefined;
  if (repo) keys.push(repo);
  return [...new Set(keys)];
}

// --- CVSS v3 base score (CVSS v3.1 specification, 7.1) -----------------------------

const W: Record<string, Record<string, number>> = {
  AV: { N: 0.85, A: 0.62, L: 0.55, P: 0.2 },
  AC: { L: 0.77, H: 0.44 },
  UI: { N: 0.85, R: 0.62 },
  C: { H: 0.56, L: 0.22, N: 0 },
  I: { H: 0.56, L: 0.22, N: 0 },
  A: { H: 0.56, L: 0.22, N: 0 },
};

const roundUp = (x: number) => {
  const i = Math.round(x * 100000);
  return i % 10000 === 0 ? i / 100000 : (Math.floor(i / 10000) + 1) / 10;
};

/** The base score of a CVSS v3.0/v3.1 vector; undefined for other vectors. */
export function cvssBaseScore(vector: string): number | undefined {
  const m = /^CVSS:3\.[01]\/(.*)$/.exec(vector);
  if (!m) return undefined;
  const v: Record<string, string> = {};
  for (const part of (m[1] ?? "").split("/")) {
    const [k, val] = part.split(":");
    if (k && val) v[k] = val;
  }
  const s = v.S;
  const pr = { N: 0.85, L: s === "C" ? 0.68 : 0.62, H: s === "C" ? 0.5 : 0.27 }[v.PR ?? ""];
  const [av, ac, ui, c, i, a] = [
    W.AV?.[v.AV ?? ""],
    W.AC?.[v.AC ?? ""],
    W.UI?.[v.UI ?? ""],
    W.C?.[v.C ?? ""],
    W.I?.[v.I ?? ""],
    W.A?.[v.A ?? ""],
  ];
  if ([av, ac, ui, c, i, a, pr].some((x) => x === undefined) || (s !== "U" && s !== "C"))
    return undefined;
  const iss = 1 - (1 - (c as number)) * (1 - (i as number)) * (1 - (a as number));
  const impact = s === "U" ? 6.42 * iss : 7.52 * (iss - 0.029) - 3.25 * Math.pow(iss - 0.02, 15);
  const exploitability = 8.22 * (av as number) * (ac as number) * (pr as number) * (ui as number);
  if (impact <= 0) return 0;
  return s === "U"
    ? roundUp(Math.min(impact + exploitability, 10))
    : roundUp(Math.min(1.08 * (impact + exploitability), 10));
}

// --- Is this version affected? -----------------------------------------------------

function compare(scheme: Scheme, a: string, b: string): number | undefined {
  return scheme === "semver" ? compareSemver(a, b) : compareNixVersions(a, b);
}

/** Whether a version lies in a range; undefined when the versions cannot be compared under its scheme. */
export function inRange(version: string, r: VersionRange): boolean | undefined {
  const ge =
    r.introduced === undefined
      ? 0
      : r.introducedExcluded
        ? ((c) => (c === undefined ? undefined : c - 1))(compare(r.scheme, version, r.introduced))
        : compare(r.scheme, version, r.introduced);
  const lt = r.fixed === undefined ? -1 : compare(r.scheme, version, r.fixed);
  const le = r.lastAffected === undefined ? 0 : compare(r.scheme, version, r.lastAffected);
  if (ge === undefined || lt === undefined || le === undefined) return undefined;
  return ge >= 0 && lt < 0 && le <= 0;
}

export function describeRange(r: VersionRange): string {
  const lo =
    r.introduced !== undefined ? `${r.introducedExcluded ? ">" : ">="} ${r.introduced}` : "";
  const hi =
    r.fixed !== undefined
      ? `< ${r.fixed}`
      : r.lastAffected !== undefined
        ? `<= ${r.lastAffected}`
        : "";
  return [lo, hi].filter((x) => x !== "").join(", ") || "all versions";
}

export interface VersionVerdict {
  readonly affected: boolean;
  /** The entry that decided it: "version 5.6.0 is listed", ">= 5.6.0, < 5.6.2 (nix ordering)", ... */
  readonly why: string;
  readonly problem?: string;
}

/** Whether `version` of a package is affected according to one affected entry. */
export function versionAffected(a: AffectedPackage, version: string): VersionVerdict {
  if (a.versions.includes(version))
    return { affected: true, why: `version ${version} is listed as affected` };
  for (const r of a.unaffected) {
    if (inRange(version, r) === true) {
      return {
        affected: false,
        why: `${describeRange(r)} is listed as unaffected (${r.scheme} ordering)`,
      };
    }
  }
  for (const r of a.ranges) {
    const hit = inRange(version, r);
    if (hit === undefined) {
      return {
        affected: false,
        why: "not comparable",
        problem: `version ${version} is not ${r.scheme} (range ${describeRange(r)})`,
      };
    }
    if (hit) return { affected: true, why: `${describeRange(r)} (${r.scheme} ordering)` };
  }
  if (
    a.versions.length === 0 &&
    a.ranges.length === 0 &&
    a.unaffected.length === 0 &&
    a.defaultStatus === "affected"
  ) {
    return {
      affected: true,
      why: "the record lists no versions and says every version is affected",
    };
  }
  if (
    a.defaultStatus === "affected" &&
    (a.ranges.length > 0 || a.versions.length > 0 || a.unaffected.length > 0)
  ) {
    return {
      affected: true,
      why: "no entry covers it, and the record's default status is affected",
    };
  }
  return { affected: false, why: "outside every affected range" };
}

/** The versions an entry says fix it: the ends of its `fixed` ranges. */
export function fixedVersions(a: AffectedPackage): string[] {
  return [...new Set(a.ranges.flatMap((r) => (r.fixed !== undefined ? [r.fixed] : [])))];
}
