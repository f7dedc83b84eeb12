export * from "./error.js";
export * from "./hook.js";
export * from "./observe.js";
export * from "./retry.js";
