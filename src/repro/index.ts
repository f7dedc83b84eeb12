export * from "./claims.js";
export * from "./consensus.js";
export * from "./diff.js";
export * from "./predicate.js";
export * from "./report.js";
