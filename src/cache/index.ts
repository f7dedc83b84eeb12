export * from "./error.js";
export * from "./layout.js";
