// Triage with VEX: OpenVEX statements (https://github.com/openvex/spec, v0.2.0)
// applied to findings, and an OpenVEX document of a scan's result. Pure.
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
}

const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);

/** Parse an OpenVEX document; untrusted input, every statement checked. */
export function parseOpenVex(json: unknown, what: string): VexStatement[] {
  const doc = json as { "@context"?: unknown; statements?: unknown } | null;
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
    const products = (Array.isArray(s.products) ? s.products : [])
      .map((p) => (typeof p === "string" ? p : str((p as Record<string, unknown> | null)?.["@id"])))
      .filter((p): p is string => p !== undefined);
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
}

/**
 * The findings with the VEX statements that name them (vulnerability by id or
 * alias, product by purl, store path or package name): the statement's status
 * replaces the finding's, and says why. A later statement wins over an earlier one.
 */
export function applyVex(
  findings: readonly Finding[],
  statements: readonly VexStatement[],
): Triaged {
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
  return { findings: out, unmatched: statements.filter((s) => !used.has(s)) };
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
