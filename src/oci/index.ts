export * from "./docker-archive.js";
export * from "./error.js";
export * from "./manifest.js";
export * from "./media.js";
export * from "./reference.js";
export * from "./tar.js";
export * from "./digest.js";
