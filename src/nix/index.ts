export * from "./base32.js";
export * from "./derivation.js";
export * from "./error.js";
export * from "./hash.js";
export * from "./nar.js";
export * from "./store-path.js";
export type * from "./store.js";
export * from "./narinfo.js";
export * from "./path-info-json.js";
