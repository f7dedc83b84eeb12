import { STATEMENT_TYPE, type ResourceDescriptor, type Statement } from "../attest/index.js";
import type { NixStore } from "../nix/index.js";
import {
  gatherSbomGraph,
  toSpdx,
  type ClosureKind,
  type CycloneDxVersion,
  type PackageMeta,
  type SbomNode,
  type SbomRoots,
} from "../sbom/index.js";
import { signAndStore, type AttestResult, type SignContext } from "./attest.js";

export type SbomFormat = "cyclonedx" | "spdx";

/** in-toto predicate types for SBOMs, as cosign and the in-toto predicate list name them. */
export const SBOM_PREDICATE_TYPES: Record<SbomFormat, string> = {
  cyclonedx: "https://cyclonedx.org/bom",
  spdx: "https://spdx.dev/Document",
};

export interface SbomOptions {
  readonly format: SbomFormat;
  readonly closure: ClosureKind;
  readonly cyclonedxVersion?: CycloneDxVersion;
  readonly timestamp?: Date;
  readonly toolVersion: string;
  readonly meta?: (node: SbomNode) => PackageMeta | undefined;
}

/** The SBOM document (JSON text) for the roots' closure. */
export async function makeSbom(nix: NixStore, roots: SbomRoots, o: SbomOptions): Promise<string> {
  const graph = await gatherSbomGraph(nix, roots, o.closure, o.meta);
  return o.format === "spdx"
    ? toSpdx(graph, {
        toolVersion: o.toolVersion,
        ...(o.timestamp ? { timestamp: o.timestamp } : {}),
      })
    : (await import("../sbom/cyclonedx.js")).toCycloneDx(graph, {
        toolVersion: o.toolVersion,
        ...(o.cyclonedxVersion ? { version: o.cyclonedxVersion } : {}),
        ...(o.timestamp ? { timestamp: o.timestamp } : {}),
      });
}

/** An in-toto statement whose predicate is an SBOM about the outputs it describes. */
export function sbomStatement(
  subjects: readonly { name: string; sha256: string }[],
  format: SbomFormat,
  document: string,
): Statement {
  return {
    _type: STATEMENT_TYPE,
    subject: subjects.map((s): ResourceDescriptor => ({
      name: s.name,
      digest: { sha256: s.sha256 },
    })),
    predicateType: SBOM_PREDICATE_TYPES[format],
    predicate: JSON.parse(document) as unknown,
  };
}

/** Sign an SBOM as an in-toto statement about the outputs it describes, and store it. */
export async function attestSbom(
  ctx: SignContext,
  drvPath: string,
  subjects: readonly { name: string; sha256: string }[],
  format: SbomFormat,
  document: string,
): Promise<AttestResult<unknown>> {
  const statement = sbomStatement(subjects, format, document);
  return { ...(await signAndStore(ctx, statement, drvPath)), statement };
}
