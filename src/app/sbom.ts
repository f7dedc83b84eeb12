import { STATEMENT_TYPE, type ResourceDescriptor, type Statement } from "../attest/index.js";
import type { NixStore } from "../nix/index.js";
import {
  collect,
  gatherSbomGraph,
  writeSpdx,
  type ClosureKind,
  type CycloneDxVersion,
  type PackageMeta,
  type SbomNode,
  type SbomRoots,
  type Sink,
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

/** Write the SBOM document (JSON text) for the roots' closure to `sink`, a piece at a time. */
export async function writeSbom(
  nix: NixStore,
  roots: SbomRoots,
  o: SbomOptions,
  sink: Sink,
): Promise<void> {
  const graph = await gatherSbomGraph(nix, roots, o.closure, o.meta);
  const common = { toolVersion: o.toolVersion, ...(o.timestamp ? { timestamp: o.timestamp } : {}) };
  if (o.format === "spdx") writeSpdx(graph, common, sink);
  else
    (await import("../sbom/cyclonedx.js")).writeCycloneDx(
      graph,
      { ...common, ...(o.cyclonedxVersion ? { version: o.cyclonedxVersion } : {}) },
      sink,
    );
}

/** The SBOM document (JSON text) for the roots' closure, as one string. */
export function makeSbom(nix: NixStore, roots: SbomRoots, o: SbomOptions): Promise<string> {
  return collect((sink) => writeSbom(nix, roots, o, sink));
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
