export * from "./evaluate.js";
export * from "./policy.js";
export * from "./vsa.js";
export * from "./vulnerabilities.js";
