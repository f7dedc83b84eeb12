// A scan's findings for other tools: SARIF 2.1.0 (code-scanning dashboards) and a
// CycloneDX 1.6 BOM with `vulnerabilities` (VDR/VEX consumers). Pure.
import type { Decision } from "./match.js";
import type { TriagedFinding } from "./vex.js";

const purl = (name: string, version: string) =>
  `pkg:nix/${encodeURIComponent(name)}@${encodeURIComponent(version)}`;

const LEVEL: Record<string, "error" | "warning" | "note"> = {
  CRITICAL: "error",
  HIGH: "error",
  MEDIUM: "warning",
  LOW: "note",
  NONE: "note",
  UNKNOWN: "warning",
};

/**
 * SARIF 2.1.0: one rule per advisory, one result per finding, located at the
 * package's store paths. Findings triaged away (fixed by a patch, not_affected)
 * are results with a suppression that gives the reason, as SARIF provides.
 */
export function toSarif(
  findings: readonly TriagedFinding[],
  decisions: readonly Decision[],
  o: { version: string },
): unknown {
  const rules = new Map<string, TriagedFinding>();
  for (const f of findings) if (!rules.has(f.advisory)) rules.set(f.advisory, f);
  const ruleIds = [...rules.keys()].sort();
  return {
    $schema: "https://json.schemastore.org/sarif-2.1.0.json",
    version: "2.1.0",
    runs: [
      {
        tool: {
          driver: {
            name: "provenix",
            version: o.version,
            informationUri: "https://provenix.dev/",
            rules: ruleIds.map((id) => {
              const f = rules.get(id) as TriagedFinding;
              const score = f.severity.find((s) => s.score !== undefined)?.score;
              return {
                id,
                ...(f.summary ? { shortDescription: { text: f.summary } } : {}),
                properties: {
                  ...(score !== undefined ? { "security-severity": String(score) } : {}),
                  rating: f.rating,
                  ...(f.aliases.length > 0 ? { aliases: f.aliases } : {}),
                  tags: ["security", "vulnerability"],
                },
              };
            }),
          },
        },
        results: findings.map((f) => ({
          ruleId: f.advisory,
          ruleIndex: ruleIds.indexOf(f.advisory),
          level: LEVEL[f.rating] ?? "warning",
          message: {
            text: `${f.advisory} affects ${f.package.name} ${f.package.version} (${f.status}): ${f.evidence}${f.fixedVersions.length > 0 ? `; fixed in ${f.fixedVersions.join(", ")}` : ""}`,
          },
          locations: (f.package.paths.length > 0 ? f.package.paths : [f.package.drvPath ?? ""])
            .filter((p) => p !== "")
            .map((p) => ({ physicalLocation: { artifactLocation: { uri: `file://${p}` } } })),
          ...(f.status === "fixed" || f.status === "not_affected"
            ? {
                suppressions: [
                  { kind: "external", status: "accepted", justification: f.reason ?? f.status },
                ],
              }
            : {}),
          properties: {
            package: purl(f.package.name, f.package.version),
            status: f.status,
            rule: f.rule,
          },
        })),
        invocations: [
          {
            executionSuccessful: true,
            toolExecutionNotifications: decisions.map((d) => ({
              level: "note",
              message: { text: `${d.advisory} ${d.package}: ${d.reason}` },
              descriptor: { id: d.decision },
            })),
          },
        ],
      },
    ],
  };
}

const CDX_STATE: Record<string, string | undefined> = {
  fixed: "resolved",
  not_affected: "not_affected",
  under_investigation: "in_triage",
};

// OpenVEX justifications in CycloneDX's terms (CycloneDX 1.6 impactAnalysisJustification).
const CDX_JUSTIFICATION: Record<string, string> = {
  component_not_present: "requires_dependency",
  vulnerable_code_not_present: "code_not_present",
  vulnerable_code_not_in_execute_path: "code_not_reachable",
  vulnerable_code_cannot_be_controlled_by_adversary: "requires_environment",
  inline_mitigations_already_exist: "protected_by_mitigating_control",
};

function cdxMethod(type: string): string {
  return type === "cvssV3_1" || type === "CVSS_V3"
    ? "CVSSv31"
    : type === "cvssV3_0"
      ? "CVSSv3"
      : type === "cvssV4_0" || type === "CVSS_V4"
        ? "CVSSv4"
        : "other";
}

/** A CycloneDX 1.6 BOM of the affected packages and the vulnerabilities found in them. */
export function toCycloneDxVulns(
  findings: readonly TriagedFinding[],
  o: { version: string; serialNumber: string; timestamp: Date },
): unknown {
  const components = new Map<string, { name: string; version: string }>();
  for (const f of findings) {
    components.set(purl(f.package.name, f.package.version), f.package);
  }
  const byAdvisory = new Map<string, TriagedFinding[]>();
  for (const f of findings) byAdvisory.set(f.advisory, [...(byAdvisory.get(f.advisory) ?? []), f]);
  const vulnerabilities = [];
  for (const [id, fs] of [...byAdvisory].sort((a, b) => a[0].localeCompare(b[0]))) {
    // One entry per advisory and analysis: CycloneDX's analysis belongs to the entry.
    const groups = new Map<string, TriagedFinding[]>();
    for (const f of fs) groups.set(f.status, [...(groups.get(f.status) ?? []), f]);
    for (const [status, group] of groups) {
      const f = group[0] as TriagedFinding;
      const state = f.vex?.status === "affected" ? "exploitable" : CDX_STATE[status];
      const justification =
        status === "not_affected" && f.vex?.justification
          ? CDX_JUSTIFICATION[f.vex.justification]
          : undefined;
      vulnerabilities.push({
        id,
        source: {
          name: id.startsWith("CVE-")
            ? "CVE"
            : id.startsWith("GHSA-")
              ? "GitHub Advisories"
              : "OSV",
        },
        ratings: f.severity.map((s) => ({
          ...(s.score !== undefined ? { score: s.score } : {}),
          ...(s.rating ? { severity: s.rating.toLowerCase() } : {}),
          method: cdxMethod(s.type),
          ...(s.vector ? { vector: s.vector } : {}),
        })),
        ...(f.summary ? { description: f.summary } : {}),
        ...(f.aliases.length > 0
          ? {
              references: f.aliases.map((a) => ({
                id: a,
                source: { name: a.startsWith("CVE-") ? "CVE" : "alias" },
              })),
            }
          : {}),
        affects: group.map((g) => ({ ref: purl(g.package.name, g.package.version) })),
        ...(state
          ? {
              analysis: {
                state,
                ...(justification ? { justification } : {}),
                ...(f.reason ? { detail: f.reason } : {}),
              },
            }
          : {}),
      });
    }
  }
  return {
    bomFormat: "CycloneDX",
    specVersion: "1.6",
    serialNumber: o.serialNumber,
    version: 1,
    metadata: {
      timestamp: o.timestamp.toISOString(),
      tools: { components: [{ type: "application", name: "provenix", version: o.version }] },
    },
    components: [...components].map(([ref, c]) => ({
      type: "library",
      "bom-ref": ref,
      name: c.name,
      version: c.version,
      purl: ref,
    })),
    vulnerabilities,
  };
}
