// CycloneDX (and its library, slow to load) is imported where it is used: app/sbom.ts.
export type { CycloneDxVersion } from "./cyclonedx.js";
export * from "./purl.js";
export * from "./graph.js";
export * from "./spdx.js";
export * from "./meta.js";
export * from "./json-stream.js";
