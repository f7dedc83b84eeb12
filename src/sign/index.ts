export * from "./bundle.js";
export * from "./dsse.js";
export * from "./error.js";
export * from "./keys.js";
export * from "./pkcs11-uri.js";
