import * as CDX from "@cyclonedx/cyclonedx-library";
import type { SbomGraph, SbomNode } from "./graph.js";
import { writeJson, type Sink } from "./json-stream.js";
import { packageUrl } from "./purl.js";

// CycloneDX JSON through the CycloneDX library: its models, its normaliser for the
// chosen spec version, and sortLists for byte-identical output.

export type CycloneDxVersion = "1.5" | "1.6" | "1.7";

const SPECS: Record<CycloneDxVersion, typeof CDX.Spec.Spec1dot6> = {
  "1.5": CDX.Spec.Spec1dot5,
  "1.6": CDX.Spec.Spec1dot6,
  "1.7": CDX.Spec.Spec1dot7,
};

function component(node: SbomNode): CDX.Models.Component {
  const props: CDX.Models.Property[] = [new CDX.Models.Property("nix:store_path", node.id)];
  if (node.drvPath) props.push(new CDX.Models.Property("nix:drv_path", node.drvPath));
  for (const o of node.outputs ?? []) {
    props.push(new CDX.Models.Property("nix:output", o.path ? `${o.name}=${o.path}` : o.name));
  }
  if (node.fixedOutput) {
    const f = node.fixedOutput;
    props.push(
      new CDX.Models.Property("nix:fixed_output_hash", `${f.method}:${f.hashAlgo}:${f.hash}`),
    );
  }
  if (node.unknown) props.push(new CDX.Models.Property("provenix:unknown", node.unknown));
  if (!node.meta) props.push(new CDX.Models.Property("provenix:meta", "unavailable"));

  const refs = (node.fixedOutput?.urls ?? []).map(
    (url) =>
      new CDX.Models.ExternalReference(url, CDX.Enums.ExternalReferenceType.Distribution, {
        comment: "fixed-output source",
      }),
  );
  if (node.meta?.homepage) {
    refs.push(
      new CDX.Models.ExternalReference(node.meta.homepage, CDX.Enums.ExternalReferenceType.Website),
    );
  }
  const hashes = new CDX.Models.HashDictionary();
  if (node.narHash) hashes.set(CDX.Enums.HashAlgorithm["SHA-256"], node.narHash);

  const c = new CDX.Models.Component(
    node.kind === "source" ? CDX.Enums.ComponentType.File : CDX.Enums.ComponentType.Library,
    node.name,
    {
      bomRef: node.id,
      version: node.version || undefined,
      purl: packageUrl(node),
      hashes,
      externalReferences: new CDX.Models.ExternalReferenceRepository(refs),
      properties: new CDX.Models.PropertyRepository(props),
      description: node.meta?.description,
      licenses: new CDX.Models.LicenseRepository(
        (node.meta?.licenses ?? []).map((l) => new CDX.Models.NamedLicense(l)),
      ),
    },
  );
  return c;
}

export interface CycloneDxOptions {
  version?: CycloneDxVersion;
  timestamp?: Date;
  toolVersion: string;
}

/**
 * Write the CycloneDX JSON document for the graph to `sink`, one component at a
 * time: deterministic, no serial number or timestamp unless asked. The bytes are
 * those of the library's own serializer with sortLists (the nodes are sorted by
 * store path, which is also the order of their bom-refs), but neither the whole
 * model nor the whole text is held at once.
 */
export function writeCycloneDx(graph: SbomGraph, options: CycloneDxOptions, sink: Sink): void {
  const bom = new CDX.Models.Bom();
  bom.metadata.tools.components.add(
    new CDX.Models.Component(CDX.Enums.ComponentType.Application, "provenix", {
      version: options.toolVersion,
    }),
  );
  if (options.timestamp) bom.metadata.timestamp = options.timestamp;
  bom.metadata.properties.add(new CDX.Models.Property("provenix:closure", graph.closure));
  for (const r of graph.roots)
    bom.metadata.properties.add(new CDX.Models.Property("provenix:root", r));

  const factory = new CDX.Serialize.JSON.Normalize.Factory(SPECS[options.version ?? "1.6"]);
  const normalizeOptions = { sortLists: true };
  const head = factory.makeForBom().normalize(bom, normalizeOptions) as unknown as Record<
    string,
    unknown
  >;
  const ids = new Set(graph.nodes.map((n) => n.id));
  const normalizer = factory.makeForComponent();
  function* components() {
    for (const n of graph.nodes) {
      const c = normalizer.normalize(component(n), normalizeOptions);
      if (c !== undefined) yield c;
    }
  }
  function* dependencies() {
    for (const n of graph.nodes) {
      const dependsOn = n.dependsOn.filter((d) => d !== n.id && ids.has(d));
      yield { ref: n.id, dependsOn: dependsOn.length > 0 ? dependsOn : undefined };
    }
  }
  writeJson(head, { components: components(), dependencies: dependencies() }, sink);
}
