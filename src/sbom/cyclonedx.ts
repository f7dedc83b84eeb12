// The library's parts, not its index: the index also loads its validators (and
// their JSON Schema compiler), a third of its start-up, which provenix does not use.
import * as Enums from "@cyclonedx/cyclonedx-library/Enums";
import * as Models from "@cyclonedx/cyclonedx-library/Models";
import * as Serialize from "@cyclonedx/cyclonedx-library/Serialize";
import * as Spec from "@cyclonedx/cyclonedx-library/Spec";
import type { SbomGraph, SbomNode } from "./graph.js";
import { writeJson, type Sink } from "./json-stream.js";
import { packageUrl } from "./purl.js";

// CycloneDX JSON through the CycloneDX library: its models, its normaliser for the
// chosen spec version, and sortLists for byte-identical output.

export type CycloneDxVersion = "1.5" | "1.6" | "1.7";

const SPECS: Record<CycloneDxVersion, typeof Spec.Spec1dot6> = {
  "1.5": Spec.Spec1dot5,
  "1.6": Spec.Spec1dot6,
  "1.7": Spec.Spec1dot7,
};

function component(node: SbomNode): Models.Component {
  const props: Models.Property[] = [new Models.Property("nix:store_path", node.id)];
  if (node.drvPath) props.push(new Models.Property("nix:drv_path", node.drvPath));
  for (const o of node.outputs ?? []) {
    props.push(new Models.Property("nix:output", o.path ? `${o.name}=${o.path}` : o.name));
  }
  if (node.fixedOutput) {
    const f = node.fixedOutput;
    props.push(new Models.Property("nix:fixed_output_hash", `${f.method}:${f.hashAlgo}:${f.hash}`));
  }
  if (node.unknown) props.push(new Models.Property("provenix:unknown", node.unknown));
  if (!node.meta) props.push(new Models.Property("provenix:meta", "unavailable"));

  const refs = (node.fixedOutput?.urls ?? []).map(
    (url) =>
      new Models.ExternalReference(url, Enums.ExternalReferenceType.Distribution, {
        comment: "fixed-output source",
      }),
  );
  if (node.meta?.homepage) {
    refs.push(
      new Models.ExternalReference(node.meta.homepage, Enums.ExternalReferenceType.Website),
    );
  }
  const hashes = new Models.HashDictionary();
  if (node.narHash) hashes.set(Enums.HashAlgorithm["SHA-256"], node.narHash);

  const c = new Models.Component(
    node.kind === "source" ? Enums.ComponentType.File : Enums.ComponentType.Library,
    node.name,
    {
      bomRef: node.id,
      version: node.version || undefined,
      purl: packageUrl(node),
      hashes,
      externalReferences: new Models.ExternalReferenceRepository(refs),
      properties: new Models.PropertyRepository(props),
      description: node.meta?.description,
      licenses: new Models.LicenseRepository(
        (node.meta?.licenses ?? []).map((l) => new Models.NamedLicense(l)),
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
  const bom = new Models.Bom();
  bom.metadata.tools.components.add(
    new Models.Component(Enums.ComponentType.Application, "provenix", {
      version: options.toolVersion,
    }),
  );
  if (options.timestamp) bom.metadata.timestamp = options.timestamp;
  bom.metadata.properties.add(new Models.Property("provenix:closure", graph.closure));
  for (const r of graph.roots) bom.metadata.properties.add(new Models.Property("provenix:root", r));

  const factory = new Serialize.JSON.Normalize.Factory(SPECS[options.version ?? "1.6"]);
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
