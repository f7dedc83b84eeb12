export * from "./verify.js";
export * from "./narinfo.js";
export * from "./keyless.js";
