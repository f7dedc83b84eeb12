// A scan as an in-toto statement: the in-toto Attestation Framework's vulns predicate
// v0.2 (spec/predicates/vulns_02.md), about the store paths scanned. Pure.
import { STATEMENT_TYPE, type Statement } from "../attest/index.js";
import type { Decision, Finding } from "./match.js";

export const VULNS_PREDICATE_V02 = "https://in-toto.io/attestation/vulns/v0.2";

export interface VulnsPredicate {
  scanner: {
    uri: string;
    version: string;
    db: { uri: string; lastUpdate: string };
    result: {
      id: string;
      severity: { method: string; score: string }[];
      annotations: Record<string, unknown>[];
    }[];
  };
  metadata: { scanStartedOn: string; scanFinishedOn: string };
}

/**
 * One result per finding. The predicate has no place for the package, the status
 * or the evidence, so each goes in an annotation, as the predicate provides for
 * scanners' own information; decisions that produced no finding are annotations of
 * a result with the advisory id too, under `decision`.
 */
export function vulnsStatement(
  subjects: readonly { name: string; sha256: string }[],
  scan: { findings: readonly Finding[]; decisions: readonly Decision[] },
  o: { version: string; dbUri: string; dbUpdated: Date; started: Date; finished: Date },
): Statement<VulnsPredicate> {
  return {
    _type: STATEMENT_TYPE,
    subject: subjects.map((s) => ({ name: s.name, digest: { sha256: s.sha256 } })),
    predicateType: VULNS_PREDICATE_V02,
    predicate: {
      scanner: {
        uri: "https://provenix.dev/scanners/provenix-vulns/v1",
        version: o.version,
        db: { uri: o.dbUri, lastUpdate: o.dbUpdated.toISOString() },
        result: [
          ...scan.findings.map((f) => ({
            id: f.advisory,
            severity: [
              ...f.severity.flatMap((s) => [
                ...(s.vector ? [{ method: s.type, score: s.vector }] : []),
                ...(s.score !== undefined
                  ? [{ method: `${s.type}_score`, score: String(s.score) }]
                  : []),
              ]),
              { method: "rating", score: f.rating },
            ],
            annotations: [
              { package: `${f.package.name}-${f.package.version}` },
              { status: f.status },
              { rule: f.rule },
              { evidence: f.evidence },
              ...(f.aliases.length > 0 ? [{ aliases: f.aliases }] : []),
              ...(f.reason ? [{ reason: f.reason }] : []),
              ...(f.fixedVersions.length > 0 ? [{ fixedVersions: f.fixedVersions }] : []),
              { paths: f.package.paths },
            ],
          })),
          ...scan.decisions.map((d) => ({
            id: d.advisory,
            severity: [],
            annotations: [{ package: d.package }, { decision: d.decision }, { reason: d.reason }],
          })),
        ],
      },
      metadata: {
        scanStartedOn: o.started.toISOString(),
        scanFinishedOn: o.finished.toISOString(),
      },
    },
  };
}
