// Derivations as Nix prints them in JSON (`nix show-derivation`, `nix derivation show`),
// in every shape since 2.8 (shared reference nix-json/README.md):
//   <= 2.22 and Lix: a map from full .drv path; "hashAlgo": "r:sha256" in one string;
//                    inputDrvs values a list of outputs (2.8) or {outputs, dynamicOutputs}
//   2.23 - 2.31:     "method" (nar | flat | text) and "hashAlgo" (sha256) apart
//   2.32 (v3):       "version": 3, base names instead of full paths; fixed outputs lose "path"
//   2.33+ (v4):      {"version": 4, "derivations": {<base name>: ...}}, inputs in
//                    "inputs": {"srcs", "drvs"}, fixed outputs {"method", "hash": "<SRI>"}
// One tolerant reader detects the shape and gives one form: the shape of Nix 2.8 with
// full paths (what derivationToJson writes), fixed-output paths computed where a
// newer Nix leaves them out.
import { NixError } from "./error.js";
import { parseNixHash } from "./hash.js";
import { makeFixedOutputPath, outputPathName } from "./store-path-hash.js";
import type { ContentAddressMethod } from "./derivation.js";

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === "object" && !Array.isArray(v);

function fail(detail: string): never {
  throw new NixError("NIX_COMMAND_FAILED", `derivation JSON: ${detail}`);
}

export type DerivationJsonShape = "2.8" | "2.23" | "v3" | "v4";

/** One derivation in Nix 2.8's `show-derivation` form, with full paths. */
export interface DerivationJson {
  readonly outputs: Record<
    string,
    {
      readonly path?: string;
      readonly hashAlgo?: string;
      readonly hash?: string;
      readonly impure?: true;
    }
  >;
  readonly inputSrcs: readonly string[];
  readonly inputDrvs: Record<string, readonly string[]>;
  readonly system: unknown;
  readonly builder: unknown;
  readonly args: unknown;
  readonly env: unknown;
}

/** Derivations by full .drv path, each in Nix 2.8's `show-derivation` form. */
export function parseDerivationJson(doc: unknown, storeDir: string): Map<string, DerivationJson> {
  if (!isObj(doc)) fail("not a JSON object");
  const wrapped = doc.version === 4 && isObj(doc.derivations);
  if (typeof doc.version === "number" && !wrapped) fail(`unknown format version ${doc.version}`);
  const entries = Object.entries(wrapped ? (doc.derivations as Obj) : doc);
  const full = (p: string) => (p.startsWith("/") ? p : `${storeDir}/${p}`);
  const out = new Map<string, DerivationJson>();
  for (const [path, v] of entries) {
    if (!isObj(v)) fail(`the entry for ${path} is not an object`);
    out.set(full(path), normalize(full(path), v, full, storeDir));
  }
  return out;
}

/** Which shape one derivation's JSON has. */
export function derivationJsonShape(drv: Obj): DerivationJsonShape {
  if (drv.version === 4 || isObj(drv.inputs)) return "v4";
  if (drv.version === 3) return "v3";
  const outputs = isObj(drv.outputs) ? Object.values(drv.outputs) : [];
  return outputs.some((o) => isObj(o) && typeof o.method === "string") ? "2.23" : "2.8";
}

const LEGACY_PREFIX: Record<ContentAddressMethod, string> = { nar: "r:", flat: "", text: "text:" };

function normalize(
  path: string,
  d: Obj,
  full: (p: string) => string,
  storeDir: string,
): DerivationJson {
  const shape = derivationJsonShape(d);
  const storeName = path.slice(storeDir.length + 1 + 33);
  const drvName = storeName.endsWith(".drv") ? storeName.slice(0, -4) : storeName;
  const outputs: DerivationJson["outputs"] = {};
  for (const [name, o] of Object.entries(isObj(d.outputs) ? d.outputs : {})) {
    if (!isObj(o)) fail(`output ${name} of ${path} is not an object`);
    outputs[name] = output(name, o, drvName, full, storeDir);
  }
  const inputs = shape === "v4" ? (isObj(d.inputs) ? d.inputs : {}) : d;
  const srcs = (shape === "v4" ? inputs.srcs : inputs.inputSrcs) ?? [];
  const drvs = (shape === "v4" ? inputs.drvs : inputs.inputDrvs) ?? {};
  if (!Array.isArray(srcs) || !srcs.every((s) => typeof s === "string")) {
    fail(`input sources of ${path} are not a list of paths`);
  }
  if (!isObj(drvs)) fail(`input derivations of ${path} are not an object`);
  return {
    outputs,
    inputSrcs: srcs.map(full),
    inputDrvs: Object.fromEntries(
      Object.entries(drvs).map(([p, v]) => {
        // 2.8: a list of outputs; later: {outputs, dynamicOutputs}.
        const names = Array.isArray(v) ? v : isObj(v) ? v.outputs : undefined;
        if (!Array.isArray(names) || !names.every((n) => typeof n === "string")) {
          fail(`input derivation ${p} of ${path} names no outputs`);
        }
        return [full(p), names];
      }),
    ),
    system: d.system,
    builder: d.builder,
    args: d.args,
    env: d.env,
  };
}

function output(
  name: string,
  o: Obj,
  drvName: string,
  full: (p: string) => string,
  storeDir: string,
): DerivationJson["outputs"][string] {
  let method: ContentAddressMethod | undefined;
  let algo: string | undefined;
  let hashHex: string | undefined;
  if (typeof o.method === "string") {
    if (!(o.method in LEGACY_PREFIX)) fail(`unknown content-address method '${o.method}'`);
    method = o.method as ContentAddressMethod;
    if (typeof o.hash === "string" && o.hashAlgo === undefined) {
      const h = parseNixHash(o.hash); // v4: SRI
      algo = h.algorithm;
      hashHex = h.hex;
    } else {
      algo = typeof o.hashAlgo === "string" ? o.hashAlgo : undefined;
      hashHex = typeof o.hash === "string" ? o.hash : undefined;
    }
  } else if (typeof o.hashAlgo === "string") {
    const legacy = o.hashAlgo;
    method = legacy.startsWith("r:") ? "nar" : legacy.startsWith("text:") ? "text" : "flat";
    algo = legacy.slice(LEGACY_PREFIX[method].length);
    hashHex = typeof o.hash === "string" ? o.hash : undefined;
  }
  const given = typeof o.path === "string" ? full(o.path) : undefined;
  if (method === undefined || algo === undefined) return given ? { path: given } : {};
  const hashAlgo = LEGACY_PREFIX[method] + algo;
  if (o.impure === true) return { hashAlgo, impure: true };
  if (hashHex === undefined) return { hashAlgo };
  const path =
    given ?? makeFixedOutputPath(outputPathName(drvName, name), method, algo, hashHex, storeDir);
  return { path, hashAlgo, hash: hashHex };
}
