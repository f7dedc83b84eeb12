// Triage with VEX: OpenVEX statements (https://github.com/openvex/spec, v0.2.0) and
// CycloneDX VEX applied to findings, and an OpenVEX document of a scan's result. Pure.
import { VulnError } from "./advisory.js";
import type { Finding, FindingStatus } from "./match.js";

export const OPENVEX_CONTEXT = "https://openvex.dev/ns/v0.2.0";

const STATUSES: readonly FindingStatus[] = [
  "not_affected",
  "affected",
  "fixed",
  "under_investigation",
];

const JUSTIFICATIONS = [
  "component_not_present",
  "vulnerable_code_not_present",
  "vulnerable_code_not_in_execute_path",
  "vulnerable_code_cannot_be_controlled_by_adversary",
  "inline_mitigations_already_exist",
];

export interface VexStatement {
  /** The document it came from, and its index there, for messages. */
  readonly source: string;
  readonly vulnerability: string;
  readonly aliases: readonly string[];
  /** Product ids: a purl (pkg:nix/name@version, or without a version), a store path, or a package name. */
  readonly products: readonly string[];
  readonly status: FindingStatus;
  readonly justification?: string;
  readonly impactStatement?: string;
  readonly actionStatement?: string;
  /** When the statement was made or last updated (RFC 3339), for an age limit. */
  readonly timestamp?: string;
}

const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);

/** Parse an OpenVEX document; untrusted input, every statement checked. */
export function parseOpenVex(json: unknown, what: string): VexStatement[] {
  const doc = json as {
    "@context"?: unknown;
    statements?: unknown;
    timestamp?: unknown;
    last_updated?: unknown;
  } | null;
  const docTime = str(doc?.last_updated) ?? str(doc?.timestamp);
  const context = str(doc?.["@context"]);
  if (!context?.startsWith("https://openvex.dev/ns")) {
    throw new VulnError(
      "MALFORMED_VEX",
      `${what} is not an OpenVEX document (no @context https://openvex.dev/ns/...)`,
    );
  }
  if (!Array.isArray(doc?.statements)) {
    throw new VulnError("MALFORMED_VEX", `${what}: statements must be a list`);
  }
  return doc.statements.map((raw, i): VexStatement => {
    const s = (raw ?? {}) as Record<string, unknown>;
    const where = `${what}: statements[${i}]`;
    const vuln = (s.vulnerability ?? {}) as Record<string, unknown>;
    const name = str(vuln.name) ?? str(vuln["@id"]);
    if (!name) throw new VulnError("MALFORMED_VEX", `${where} names no vulnerability`);
    const status = str(s.status) as FindingStatus | undefined;
    if (!status || !STATUSES.includes(status)) {
      throw new VulnError(
        "MALFORMED_VEX",
        `${where}: status must be one of ${STATUSES.join(", ")}`,
      );
    }
    const products = (Array.isArray(s.products) ? s.products : []).flatMap((p): string[] => {
      if (typeof p === "string") return [p];
      const o = (p ?? {}) as { "@id"?: unknown; identifiers?: { purl?: unknown } };
      return [str(o["@id"]), str(o.identifiers?.purl)].filter((x): x is string => x !== undefined);
    });
    if (products.length === 0) throw new VulnError("MALFORMED_VEX", `${where} names no product`);
    const justification = str(s.justification);
    const impactStatement = str(s.impact_statement);
    if (status === "not_affected" && justification === undefined && impactStatement === undefined) {
      throw new VulnError(
        "MALFORMED_VEX",
        `${where}: not_affected needs a justification or an impact_statement`,
      );
    }
    if (justification !== undefined && !JUSTIFICATIONS.includes(justification)) {
      throw new VulnError("MALFORMED_VEX", `${where}: unknown justification '${justification}'`);
    }
    const aliases = Array.isArray(vuln.aliases)
      ? vuln.aliases.filter((a): a is string => typeof a === "string")
      : [];
    return {
      source: `${what}#${i}`,
      vulnerability: name,
      aliases,
      products,
      status,
      ...(justification !== undefined ? { justification } : {}),
      ...(impactStatement !== undefined ? { impactStatement } : {}),
      ...(str(s.action_statement) !== undefined
        ? { actionStatement: str(s.action_statement) }
        : {}),
      ...timestampOf(str(s.last_updated) ?? str(s.timestamp) ?? docTime, where),
    };
  });
}

function timestampOf(t: string | undefined, where: string): { timestamp?: string } {
  if (t === undefined) return {};
  if (Number.isNaN(Date.parse(t)))
    throw new VulnError("MALFORMED_VEX", `${where}: '${t}' is not an RFC 3339 time`);
  return { timestamp: t };
}

// CycloneDX VEX (https://cyclonedx.org/capabilities/vex/): a BOM's vulnerabilities[]
// with an analysis, about components named by bom-ref (in this BOM, or a BOM-Link
// urn:cdx:serial/version#bom-ref) or directly by purl.

/** CycloneDX impactAnalysisState -> OpenVEX status. */
const CDX_STATE: Record<string, FindingStatus> = {
  resolved: "fixed",
  resolved_with_pedigree: "fixed",
  exploitable: "affected",
  in_triage: "under_investigation",
  false_positive: "not_affected",
  not_affected: "not_affected",
};

/** CycloneDX justifications with an OpenVEX equivalent (the rest become the impact statement). */
const CDX_TO_OPENVEX: Record<string, string> = {
  code_not_present: "vulnerable_code_not_present",
  code_not_reachable: "vulnerable_code_not_in_execute_path",
  protected_by_mitigating_control: "inline_mitigations_already_exist",
};

/** Parse the vulnerabilities of a CycloneDX (1.4 and later) BOM as VEX statements. */
export function parseCycloneDxVex(json: unknown, what: string): VexStatement[] {
  const bom = (json ?? {}) as Record<string, unknown>;
  if (bom.bomFormat !== "CycloneDX") {
    throw new VulnError("MALFORMED_VEX", `${what} is not a CycloneDX document (bomFormat)`);
  }
  if (!Array.isArray(bom.vulnerabilities)) {
    throw new VulnError("MALFORMED_VEX", `${what}: a CycloneDX VEX needs a vulnerabilities list`);
  }
  // bom-ref -> what names the component: its purl, else name@version.
  const refs = new Map<string, string[]>();
  const walk = (cs: unknown) => {
    for (const c of Array.isArray(cs) ? cs : []) {
      const o = (c ?? {}) as Record<string, unknown>;
      const ref = str(o["bom-ref"]);
      const ids = [
        ...(str(o.purl) ? [str(o.purl) as string] : []),
        ...(str(o.name) ? [str(o.name) as string] : []),
      ];
      if (ref) refs.set(ref, ids);
      walk(o.components);
    }
  };
  walk(bom.components);
  walk(
    ((bom.metadata ?? {}) as Record<string, unknown>).component
      ? [(bom.metadata as Record<string, unknown>).component]
      : [],
  );
  const docTime = str(((bom.metadata ?? {}) as Record<string, unknown>).timestamp);
  return bom.vulnerabilities.map((raw, i): VexStatement => {
    const v = (raw ?? {}) as Record<string, unknown>;
    const where = `${what}: vulnerabilities[${i}]`;
    const id = str(v.id);
    if (!id) throw new VulnError("MALFORMED_VEX", `${where} has no id`);
    const analysis = (v.analysis ?? {}) as Record<string, unknown>;
    const state = str(analysis.state);
    const status = state !== undefined ? CDX_STATE[state] : undefined;
    if (!status) {
      throw new VulnError(
        "MALFORMED_VEX",
        `${where}: analysis.state must be one of ${Object.keys(CDX_STATE).join(", ")}`,
      );
    }
    const products = (Array.isArray(v.affects) ? v.affects : []).flatMap((a) => {
      const ref = str(((a ?? {}) as Record<string, unknown>).ref);
      if (!ref) return [];
      const local = ref.startsWith("urn:cdx:") ? ref.slice(ref.indexOf("#") + 1) : ref;
      return refs.get(local) ?? [local];
    });
    if (products.length === 0) throw new VulnError("MALFORMED_VEX", `${where} affects nothing`);
    const cdxJustification = str(analysis.justification);
    const detail = str(analysis.detail);
    const justification =
      cdxJustification !== undefined ? CDX_TO_OPENVEX[cdxJustification] : undefined;
    const impact =
      status === "not_affected" && justification === undefined
        ? [state === "false_positive" ? "false positive" : cdxJustification, detail]
            .filter((x) => x !== undefined)
            .join(": ") || undefined
        : detail;
    if (status === "not_affected" && justification === undefined && impact === undefined) {
      throw new VulnError(
        "MALFORMED_VEX",
        `${where}: not_affected needs a justification or a detail`,
      );
    }
    const aliases = (Array.isArray(v.references) ? v.references : []).flatMap((r) => {
      const rid = str(((r ?? {}) as Record<string, unknown>).id);
      return rid ? [rid] : [];
    });
    const response = Array.isArray(analysis.response)
      ? analysis.response.filter((x): x is string => typeof x === "string")
      : [];
    return {
      source: `${what}#${i}`,
      vulnerability: id,
      aliases,
      products,
      status,
      ...(justification !== undefined ? { justification } : {}),
      ...(impact !== undefined ? { impactStatement: impact } : {}),
      ...(status === "affected" && response.length > 0
        ? { actionStatement: `response: ${response.join(", ")}` }
        : {}),
      ...timestampOf(str(analysis.lastUpdated) ?? str(analysis.firstIssued) ?? docTime, where),
    };
  });
}

/** The ids a finding's package answers to in VEX products. */
function productIds(f: Finding): string[] {
  const { name, version, drvPath, paths } = f.package;
  return [
    `pkg:nix/${encodeURIComponent(name)}@${encodeURIComponent(version)}`,
    `pkg:nix/${encodeURIComponent(name)}`,
    name,
    ...paths,
    ...(drvPath ? [drvPath] : []),
  ];
}

/** A finding, with the VEX statement that triaged it. */
export type TriagedFinding = Finding & { readonly vex?: VexStatement };

export interface Triaged {
  readonly findings: readonly TriagedFinding[];
  /** Statements that matched no finding of this scan. */
  readonly unmatched: readonly VexStatement[];
  /** Statements older than the age limit (or without a time, under a limit): not applied. */
  readonly expired: readonly VexStatement[];
}

export interface VexOptions {
  /** Statements made or updated longer ago than this are expired. */
  readonly maxAgeDays?: number;
  readonly now?: Date;
}

/** Whether a statement is past an age limit; one without a time is, under any limit. */
export function vexExpired(s: VexStatement, o: VexOptions): boolean {
  if (o.maxAgeDays === undefined) return false;
  if (s.timestamp === undefined) return true;
  const now = (o.now ?? new Date()).getTime();
  return now - Date.parse(s.timestamp) > o.maxAgeDays * 86_400_000;
}

/**
 * The findings with the VEX statements that name them (vulnerability by id or
 * alias, product by purl, store path or package name): the statement's status
 * replaces the finding's, and says why. A later statement wins over an earlier one.
 */
export function applyVex(
  findings: readonly Finding[],
  all: readonly VexStatement[],
  options: VexOptions = {},
): Triaged {
  const expired = all.filter((s) => vexExpired(s, options));
  const statements = all.filter((s) => !expired.includes(s));
  const used = new Set<VexStatement>();
  const out = findings.map((f) => {
    const ids = new Set([f.advisory, ...f.aliases].map((x) => x.toUpperCase()));
    const products = new Set(productIds(f));
    const hit = [...statements]
      .reverse()
      .find(
        (s) =>
          [s.vulnerability, ...s.aliases].some((v) => ids.has(v.toUpperCase())) &&
          s.products.some((p) => products.has(p)),
      );
    if (!hit) return f;
    used.add(hit);
    const why =
      hit.justification ?? hit.impactStatement ?? hit.actionStatement ?? `VEX says ${hit.status}`;
    return { ...f, status: hit.status, reason: `VEX ${hit.source}: ${why}`, vex: hit };
  });
  return { findings: out, unmatched: statements.filter((s) => !used.has(s)), expired };
}

/**
 * An OpenVEX document of a scan's findings, one statement per finding, about the
 * package by its purl (pkg:nix/name@version). OpenVEX needs one statement at
 * least: a scan without findings has no document.
 */
export function toOpenVex(
  findings: readonly TriagedFinding[],
  o: { id: string; author: string; timestamp: Date; tool: string },
): unknown {
  if (findings.length === 0) return undefined;
  return {
    "@context": OPENVEX_CONTEXT,
    "@id": o.id,
    author: o.author,
    timestamp: o.timestamp.toISOString(),
    version: 1,
    tooling: o.tool,
    statements: findings.map((f) => {
      const purl = `pkg:nix/${encodeURIComponent(f.package.name)}@${encodeURIComponent(f.package.version)}`;
      const v = f.vex;
      return {
        vulnerability: {
          name: f.advisory,
          ...(f.aliases.length > 0 ? { aliases: [...new Set(f.aliases)] } : {}),
        },
        products: [{ "@id": purl, identifiers: { purl } }],
        status: f.status,
        ...(f.status === "not_affected"
          ? v?.justification !== undefined
            ? { justification: v.justification }
            : { impact_statement: v?.impactStatement ?? f.reason ?? "not affected" }
          : {}),
        ...(f.status === "affected"
          ? {
              action_statement:
                v?.actionStatement ??
                (f.fixedVersions.length > 0
                  ? `update to ${f.fixedVersions.join(" or ")}`
                  : "no fixed version is known"),
            }
          : {}),
        ...(f.reason ? { status_notes: f.reason } : {}),
      };
    }),
  };
}
