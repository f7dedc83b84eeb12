import { createHash } from "node:crypto";
import { writeJson, type Sink } from "./json-stream.js";
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

export interface SpdxOptions {
  timestamp?: Date;
  toolVersion: string;
}

/**
 * Write the SPDX 2.3 JSON document to `sink`, a package at a time. `created` is
 * required by SPDX: it is the given time, or the roots' registration time, so the
 * same closure gives the same bytes.
 */
export function writeSpdx(graph: SbomGraph, options: SpdxOptions, sink: Sink): void {
  const created = options.timestamp ?? new Date((graph.rootsRegisteredAt ?? 0) * 1000);
  const namespaceHash = createHash("sha256")
    .update(graph.closure + "\n" + graph.roots.join("\n"))
    .digest("hex");
  const rootName = graph.roots.map((r) => r.slice(r.lastIndexOf("/") + 1)).join(", ");
  const ids = new Set(graph.nodes.map((n) => n.id));
  const describes = graph.roots.filter((r) => ids.has(r)).map((r) => spdxId({ id: r }));
  function* packages() {
    for (const n of graph.nodes) yield spdxPackage(n);
  }
  function* relationships() {
    for (const id of describes)
      yield {
        spdxElementId: "SPDXRef-DOCUMENT",
        relationshipType: "DESCRIBES",
        relatedSpdxElement: id,
      };
    for (const n of graph.nodes) {
      const from = spdxId(n);
      for (const d of n.dependsOn) {
        if (ids.has(d))
          yield {
            spdxElementId: from,
            relationshipType: "DEPENDS_ON",
            relatedSpdxElement: spdxId({ id: d }),
          };
      }
    }
  }
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
    documentDescribes: describes,
  };
  writeJson(doc, { packages: packages(), relationships: relationships() }, sink);
}
