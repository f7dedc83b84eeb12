export * from "./advisory.js";
export * from "./match.js";
export * from "./version.js";
export * from "./vex.js";
export * from "./statement.js";
export * from "./report.js";
export * from "./identifiers.js";
