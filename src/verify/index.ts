export * from "./verify.js";
export * from "./narinfo.js";
