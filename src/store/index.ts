export * from "./attestation-store.js";
export * from "./error.js";
export * from "./journal.js";
export * from "./rebuilds.js";
export * from "./pushes.js";
