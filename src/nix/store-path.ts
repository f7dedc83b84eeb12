import { NixError } from "./error.js";

export const DEFAULT_STORE_DIR = "/nix/store";

/** A parsed store path: `<storeDir>/<hashPart>-<name>`. */
export interface StorePath {
  readonly storeDir: string;
  readonly hashPart: string;
  readonly name: string;
  readonly path: string;
}

// libstore/path.cc: the hash part is 32 nix-base32 characters; names are at most
// 211 characters of [A-Za-z0-9+-._?=]. Nix 2.8 accepts names that start with a dot;
// we also refuse "." and "..", which newer Nix refuses, as they are path traversal.
const HASH_PART = /^[0123456789abcdfghijklmnpqrsvwxyz]{32}$/;
const NAME = /^[A-Za-z0-9+\-._?=]+$/;
const MAX_NAME = 211;

export function parseStorePath(path: string, storeDir = DEFAULT_STORE_DIR): StorePath {
  const prefix = storeDir + "/";
  if (!path.startsWith(prefix)) {
    throw new NixError("NOT_IN_STORE", `'${path}' is not in the Nix store ${storeDir}`);
  }
  const base = path.slice(prefix.length);
  if (base.includes("/")) {
    throw new NixError(
      "INVALID_STORE_PATH",
      `'${path}' is inside a store path, not a store path itself`,
    );
  }
  const hashPart = base.slice(0, 32);
  if (!HASH_PART.test(hashPart) || base[32] !== "-") {
    throw new NixError("INVALID_STORE_PATH", `'${path}' has no valid 32-character hash part`);
  }
  const name = base.slice(33);
  if (
    name.length === 0 ||
    name.length > MAX_NAME ||
    !NAME.test(name) ||
    name === "." ||
    name === ".."
  ) {
    throw new NixError("INVALID_STORE_PATH", `'${path}' has an invalid name '${name}'`);
  }
  return { storeDir, hashPart, name, path };
}

export function isStorePath(path: string, storeDir = DEFAULT_STORE_DIR): boolean {
  try {
    parseStorePath(path, storeDir);
    return true;
  } catch {
    return false;
  }
}

/** The store path that contains `path` (itself, or the top of a path inside the store). */
export function toStorePath(path: string, storeDir = DEFAULT_STORE_DIR): StorePath {
  const prefix = storeDir + "/";
  if (!path.startsWith(prefix)) {
    throw new NixError("NOT_IN_STORE", `'${path}' is not in the Nix store ${storeDir}`);
  }
  const slash = path.indexOf("/", prefix.length);
  return parseStorePath(slash === -1 ? path : path.slice(0, slash), storeDir);
}

export function isDerivationPath(path: string): boolean {
  return path.endsWith(".drv");
}

/** `builtins.parseDrvName`: the version starts at the first `-` followed by a non-letter. */
export function parseDrvName(name: string): { name: string; version: string } {
  for (let i = 0; i < name.length; i++) {
    if (name[i] === "-" && i + 1 < name.length && !/[A-Za-z]/.test(name[i + 1] as string)) {
      return { name: name.slice(0, i), version: name.slice(i + 1) };
    }
  }
  return { name, version: "" };
}
