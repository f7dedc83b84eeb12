export * from "./gather.js";
export * from "./provenance.js";
export * from "./statement.js";
