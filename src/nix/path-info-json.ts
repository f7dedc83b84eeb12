// `nix path-info --json`, in every shape Nix has printed (see
// shared reference nix-json/README.md, from Nix's release notes and test data):
//   <= 2.18 and Lix: a list of objects with "path" (and "valid": false for invalid ones)
//   2.19 - 2.32:     a map from full store path to an object, or null when invalid
//   2.33+ format 1:  the same map, each object with "version": 1 and "storeDir"
//   2.33+ format 2:  {"version": 2, "storeDir", "info": {<base name>: object | null}},
//                    base names in references and deriver, "ca" as {method, hash}
//   2.35+ format 3:  format 2 with signatures as {keyName, sig}
// Since 2.23 absent fields are null rather than left out. One tolerant reader
// detects the shape; the result is provenix's PathInfo with full paths and Nix's
// legacy string forms (`fixed:r:sha256:<nix32>`, `name:base64`).
import { encodeNixBase32 } from "./base32.js";
import { NixError } from "./error.js";
import { parseNixHash } from "./hash.js";
import type { PathInfo } from "./store.js";

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => v !== null && typeof v === "object" && !Array.isArray(v);

function fail(detail: string): never {
  throw new NixError("NIX_COMMAND_FAILED", `nix path-info --json: ${detail}`);
}

/** Which shape a document has: for messages and tests. */
export type PathInfoShape = "list" | "map" | "format-2" | "format-3";

export function pathInfoShape(doc: unknown): PathInfoShape {
  if (Array.isArray(doc)) return "list";
  if (!isObj(doc)) return fail("neither a list nor an object");
  if (isObj(doc.info) && (doc.version === 2 || doc.version === 3)) {
    return doc.version === 2 ? "format-2" : "format-3";
  }
  if (typeof doc.version === "number" && doc.version > 3) {
    return fail(`unknown format version ${doc.version}`);
  }
  return "map";
}

/**
 * Parse a `nix path-info --json` document (any shape) into path infos by full store
 * path; invalid paths (null, or "valid": false) are left out.
 */
export function parsePathInfoJson(doc: unknown, storeDir: string): Map<string, PathInfo> {
  const out = new Map<string, PathInfo>();
  const shape = pathInfoShape(doc);
  const full = (p: string) => (p.startsWith("/") ? p : `${storeDir}/${p}`);
  const add = (path: string, v: unknown) => {
    if (v === null) return;
    if (!isObj(v)) fail(`the entry for ${path} is not an object`);
    if (v.valid === false) return;
    out.set(full(path), pathInfoFromObject(full(path), v, full));
  };
  switch (shape) {
    case "list":
      for (const v of doc as unknown[]) {
        if (!isObj(v) || typeof v.path !== "string") fail("a list entry has no path");
        add(v.path, v);
      }
      break;
    case "map":
      for (const [path, v] of Object.entries(doc as Obj)) add(path, v);
      break;
    case "format-2":
    case "format-3": {
      const d = doc as Obj;
      const dir = typeof d.storeDir === "string" ? d.storeDir : storeDir;
      if (dir !== storeDir) fail(`store directory is ${dir}, expected ${storeDir}`);
      for (const [base, v] of Object.entries(d.info as Obj)) add(base, v);
      break;
    }
  }
  return out;
}

/** One store object's info, in any shape; `full` makes base names full paths. */
export function pathInfoFromObject(path: string, v: Obj, full: (p: string) => string): PathInfo {
  const str = (k: string): string | undefined => {
    const x = v[k];
    if (x === undefined || x === null) return undefined;
    if (typeof x !== "string") fail(`${k} of ${path} is not a string`);
    return x;
  };
  const narHash = str("narHash");
  if (narHash === undefined) fail(`no narHash for ${path}`);
  const refs = v.references ?? [];
  if (!Array.isArray(refs) || !refs.every((r) => typeof r === "string")) {
    fail(`references of ${path} are not a list of paths`);
  }
  const deriver = str("deriver");
  const time = v.registrationTime;
  const size = v.narSize;
  const ca = contentAddress(v.ca, path);
  return {
    path,
    narHash: parseNixHash(narHash, "sha256").hex,
    narSize: typeof size === "number" ? size : 0,
    references: refs.map(full),
    ...(deriver !== undefined ? { deriver: full(deriver) } : {}),
    ...(typeof time === "number" ? { registrationTime: time } : {}),
    ultimate: v.ultimate === true,
    signatures: signatures(v.signatures, path),
    ...(ca !== undefined ? { ca } : {}),
    ...(isObj(v.provenance) ? { provenance: v.provenance } : {}),
  };
}

/** `name:base64` strings (<= 2.34, format <= 2) or {keyName, sig} objects (format 3). */
function signatures(v: unknown, path: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) return fail(`signatures of ${path} are not a list`);
  return v.map((s) => {
    if (typeof s === "string") return s;
    if (isObj(s) && typeof s.keyName === "string" && typeof s.sig === "string") {
      return `${s.keyName}:${s.sig}`;
    }
    return fail(`a signature of ${path} is neither name:base64 nor {keyName, sig}`);
  });
}

// Nix's content-address methods (libstore/content-address.cc) and their legacy prefixes.
const METHOD_PREFIX: Record<string, string> = {
  nar: "fixed:r:",
  flat: "fixed:",
  text: "text:",
  git: "fixed:git:",
};

/** The legacy string form of a content address: kept as is, or made from {method, hash}. */
function contentAddress(v: unknown, path: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === "string") return v;
  if (isObj(v) && typeof v.method === "string" && typeof v.hash === "string") {
    const prefix = METHOD_PREFIX[v.method];
    if (prefix === undefined) fail(`unknown content-address method '${v.method}' of ${path}`);
    const h = parseNixHash(v.hash);
    return `${prefix}${h.algorithm}:${encodeNixBase32(Buffer.from(h.hex, "hex"))}`;
  }
  return fail(`ca of ${path} is neither a string nor {method, hash}`);
}
