export * from "./attestation-store.js";
export * from "./error.js";
