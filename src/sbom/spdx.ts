import { createHash } from "node:crypto";
import { packageUrl } from "./purl.js";
import type { SbomGraph, SbomNode } from "./graph.js";

// SPDX 2.3 JSON (spdx/spdx-spec, schemas/spdx-schema.json). No well-kept JS library
// writes SPDX 2.3, so the document is built here and checked against the official
// schema in the tests.

interface SpdxPackage {
  SPDXID: string;
  name: string;
  versionInfo?: string;
  downloadLocation: string;
  filesAnalyzed: false;
  checksums?: { algorithm: "SHA256"; checksumValue: string }[];
  licenseConcluded: string;
  licenseDeclared: string;
  copyrightText: string;
  description?: string;
  homepage?: string;
  comment?: string;
  externalRefs: { referenceCategory: string; referenceType: string; referenceLocator: string }[];
  primaryPackagePurpose?: string;
}

/** SPDX ids allow [A-Za-z0-9.-]; a store path's base name fits once `+`, `_`, `?`, `=` are replaced. */
export function spdxId(node: Pick<SbomNode, "id">): string {
  const base = node.id.slice(node.id.lastIndexOf("/") + 1);
  return "SPDXRef-" + base.replace(/[^A-Za-z0-9.-]/g, "-");
}

function spdxPackage(node: SbomNode): SpdxPackage {
  const comment = [
    `nix store path: ${node.id}`,
    ...(node.drvPath && node.drvPath !== node.id ? [`nix derivation: ${node.drvPath}`] : []),
    ...(node.outputs ?? []).map((o) => `nix output: ${o.name}${o.path ? ` = ${o.path}` : ""}`),
    ...(node.fixedOutput
      ? [
          `fixed-output hash: ${node.fixedOutput.method}:${node.fixedOutput.hashAlgo}:${node.fixedOutput.hash}`,
        ]
      : []),
    ...(node.unknown ? [`unknown: ${node.unknown}`] : []),
    ...(node.meta ? [] : ["package metadata (meta): unavailable"]),
  ].join("\n");
  const licenses = node.meta?.licenses ?? [];
  const pkg: SpdxPackage = {
    SPDXID: spdxId(node),
    name: node.name,
    downloadLocation: node.fixedOutput?.urls[0] ?? "NOASSERTION",
    filesAnalyzed: false,
    licenseConcluded: "NOASSERTION",
    // Only ids that are valid SPDX license identifiers could go here; names are kept in the comment.
    licenseDeclared: "NOASSERTION",
    copyrightText: "NOASSERTION",
    comment: licenses.length > 0 ? `${comment}\nlicenses (meta): ${licenses.join(", ")}` : comment,
    externalRefs: [
      {
        referenceCategory: "PACKAGE-MANAGER",
        referenceType: "purl",
        referenceLocator: packageUrl(node),
      },
    ],
    primaryPackagePurpose: node.kind === "source" ? "SOURCE" : "LIBRARY",
  };
  if (node.version) pkg.versionInfo = node.version;
  if (node.narHash) pkg.checksums = [{ algorithm: "SHA256", checksumValue: node.narHash }];
  if (node.meta?.description) pkg.description = node.meta.description;
  if (node.meta?.homepage) pkg.homepage = node.meta.homepage;
  return pkg;
}

function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/**
 * An SPDX 2.3 JSON document. `created` is required by SPDX: it is the given time, or
 * the roots' registration time, so the same closure gives the same bytes.
 */
export function toSpdx(
  graph: SbomGraph,
  options: { timestamp?: Date; toolVersion: string },
): string {
  const created = options.timestamp ?? new Date((graph.rootsRegisteredAt ?? 0) * 1000);
  const namespaceHash = createHash("sha256")
    .update(graph.closure + "\n" + graph.roots.join("\n"))
    .digest("hex");
  const rootName = graph.roots.map((r) => r.slice(r.lastIndexOf("/") + 1)).join(", ");
  const ids = new Map(graph.nodes.map((n) => [n.id, spdxId(n)]));
  const relationships = [
    ...graph.roots
      .filter((r) => ids.has(r))
      .map((r) => ({
        spdxElementId: "SPDXRef-DOCUMENT",
        relationshipType: "DESCRIBES",
        relatedSpdxElement: ids.get(r) as string,
      })),
    ...graph.nodes.flatMap((n) =>
      n.dependsOn
        .filter((d) => ids.has(d))
        .map((d) => ({
          spdxElementId: ids.get(n.id) as string,
          relationshipType: "DEPENDS_ON",
          relatedSpdxElement: ids.get(d) as string,
        })),
    ),
  ];
  const doc = {
    spdxVersion: "SPDX-2.3",
    dataLicense: "CC0-1.0",
    SPDXID: "SPDXRef-DOCUMENT",
    name: `${graph.closure} closure of ${rootName}`,
    documentNamespace: `https://provenix.dev/spdx/${graph.closure}/${namespaceHash}`,
    creationInfo: {
      created: rfc3339(created),
      creators: [`Tool: provenix-${options.toolVersion}`],
    },
    documentDescribes: graph.roots.filter((r) => ids.has(r)).map((r) => ids.get(r) as string),
    packages: graph.nodes.map(spdxPackage),
    relationships,
  };
  return JSON.stringify(doc, null, 2) + "\n";
}
