export * from "./cyclonedx.js";
export * from "./graph.js";
export * from "./spdx.js";
export * from "./meta.js";
