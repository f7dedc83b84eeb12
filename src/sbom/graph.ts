import { DerivationCache } from "../attest/index.js";
import {
  attribute,
  envValue,
  fetchUrls,
  isDerivationPath,
  isFixedOutput,
  NixError,
  parseDrvName,
  parseStorePath,
  type Derivation,
  type NixStore,
} from "../nix/index.js";

// The dependency graph an SBOM describes: store paths (runtime closure, from
// references) and/or derivations and their sources (build closure, from inputs).

export type ClosureKind = "runtime" | "build" | "both";

export interface FixedOutputSource {
  method: string;
  hashAlgo: string;
  /** The declared hash, hex, as written in the .drv. */
  hash: string;
  urls: string[];
}

/** Package metadata, when known (from `meta`); absent fields are unknown, never guessed. */
export interface PackageMeta {
  description?: string;
  homepage?: string;
  /** SPDX license ids or names. */
  licenses?: string[];
  /** CPE 2.3 names (meta.identifiers.cpe, then possibleCPEs[].cpe). */
  cpes?: string[];
  /** Package URLs (meta.identifiers.purl, purls). */
  purls?: string[];
  /** meta.knownVulnerabilities. */
  knownVulnerabilities?: string[];
}

export interface SbomNode {
  /** A store path: an output or source (runtime/both), or a .drv (build/both). */
  id: string;
  kind: "path" | "derivation" | "source";
  name: string;
  version: string;
  /** Hex sha256 of the path's NAR, when the path is valid here. */
  narHash?: string;
  /** The derivation that produced it (paths), or itself (derivations); absent when unknown. */
  drvPath?: string;
  /** For derivations: their output names and paths. For paths: the output name. */
  outputs?: { name: string; path?: string }[];
  fixedOutput?: FixedOutputSource;
  meta?: PackageMeta;
  /** Why something is unknown (a garbage-collected deriver, a path that is not valid). */
  unknown?: string;
  /** Ids of the nodes this one depends on, sorted. */
  dependsOn: string[];
}

export interface SbomGraph {
  closure: ClosureKind;
  roots: string[];
  /** Sorted by id. */
  nodes: SbomNode[];
  /** Latest registration time among the roots, for deterministic document timestamps. */
  rootsRegisteredAt?: number;
}

/** Name and version as Nix users know them: pname/version attributes, else parseDrvName. */
export function nameAndVersion(
  drv: Derivation | undefined,
  storeName: string,
): { name: string; version: string } {
  if (drv) {
    const pname = attribute(drv, "pname");
    const version = attribute(drv, "version");
    if (typeof pname === "string" && pname !== "") {
      return { name: pname, version: typeof version === "string" ? version : "" };
    }
    const name = envValue(drv, "name") ?? attribute(drv, "name");
    if (typeof name === "string") return parseDrvName(name);
  }
  return parseDrvName(storeName.replace(/\.drv$/, ""));
}

/** The fixed-output source a derivation fetches (its declared hash and URLs), if it is one. */
export function fixedOutput(drv: Derivation): FixedOutputSource | undefined {
  const out = drv.outputs[0]?.[1];
  if (!isFixedOutput(drv) || out?.kind !== "caFixed") return undefined;
  return { method: out.method, hashAlgo: out.hashAlgo, hash: out.hash, urls: fetchUrls(drv) };
}

/**
 * Own copies of the strings a node keeps, one per distinct string. A string read
 * from a .drv is a slice of the file's whole text and keeps all of it alive: at
 * 50,000 derivations that is most of the memory an SBOM takes.
 */
class Strings {
  private readonly seen = new Map<string, string>();
  get(s: string): string {
    let own = this.seen.get(s);
    if (own === undefined) {
      own = s.padEnd(s.length + 1).slice(0, -1); // a copy: padEnd writes a new string
      this.seen.set(own, own);
    }
    return own;
  }
  node(n: SbomNode): SbomNode {
    const own = (x: string) => this.get(x);
    const out: SbomNode = {
      ...n,
      id: own(n.id),
      name: own(n.name),
      version: own(n.version),
      dependsOn: n.dependsOn.map(own),
    };
    if (n.drvPath !== undefined) out.drvPath = own(n.drvPath);
    if (n.outputs)
      out.outputs = n.outputs.map((o) =>
        o.path === undefined ? { name: own(o.name) } : { name: own(o.name), path: own(o.path) },
      );
    if (n.fixedOutput) {
      const f = n.fixedOutput;
      out.fixedOutput = {
        method: own(f.method),
        hashAlgo: own(f.hashAlgo),
        hash: own(f.hash),
        urls: f.urls.map(own),
      };
    }
    return out;
  }
}

async function tryDerivation(
  cache: DerivationCache,
  drvPath: string | undefined,
): Promise<Derivation | undefined> {
  if (drvPath === undefined) return undefined;
  try {
    return await cache.get(drvPath);
  } catch (e) {
    if (e instanceof NixError && (e.code === "NOT_VALID" || e.code === "MALFORMED_DERIVATION"))
      return undefined;
    throw e;
  }
}

/** The runtime closure of output paths: every path they reference, transitively. */
async function runtimeNodes(
  store: NixStore,
  roots: string[],
  cache: DerivationCache,
  strings: Strings,
): Promise<SbomNode[]> {
  const paths = await store.closure(roots);
  const infos = await store.pathInfos(paths);
  const nodes: SbomNode[] = [];
  for (const path of paths) {
    const info = infos.get(path);
    const storeName = parseStorePath(path, store.storeDir).name;
    if (!info) {
      nodes.push({
        id: path,
        kind: "path",
        ...parseDrvName(storeName),
        unknown: "not a valid store path",
        dependsOn: [],
      });
      continue;
    }
    const drv = await tryDerivation(cache, info.deriver);
    const output = drv?.outputs.find(([, o]) => "path" in o && o.path === path)?.[0];
    const node: SbomNode = {
      id: path,
      kind: "path",
      ...nameAndVersion(drv, storeName),
      narHash: info.narHash,
      dependsOn: info.references.filter((r) => r !== path).sort(),
    };
    if (info.deriver !== undefined && drv) node.drvPath = info.deriver;
    if (output !== undefined) node.outputs = [{ name: output }];
    if (drv) {
      const fixed = fixedOutput(drv);
      if (fixed) node.fixedOutput = fixed;
    } else {
      node.unknown = info.deriver
        ? `deriver ${info.deriver} is not available (garbage-collected?)`
        : "no deriver recorded (added to the store, or substituted without one)";
    }
    nodes.push(strings.node(node));
  }
  return nodes;
}

/** The build closure of derivations: every .drv reachable through inputDrvs, and every input source. */
async function buildNodes(
  store: NixStore,
  roots: string[],
  cache: DerivationCache,
  strings: Strings,
): Promise<SbomNode[]> {
  const seen = new Set<string>(roots);
  const queue = [...roots];
  const visit = (p: string) => {
    const own = strings.get(p);
    if (!seen.has(own)) {
      seen.add(own);
      queue.push(own);
    }
  };
  // Each derivation becomes its node as it is read, so that the derivations
  // themselves need not be kept; NAR hashes come in one query at the end.
  const nodes: SbomNode[] = [];
  const sources = new Set<string>();
  while (queue.length > 0) {
    const drvPath = queue.pop() as string;
    // A root must be readable; a missing or broken input becomes an explicit unknown entry.
    const drv = roots.includes(drvPath)
      ? await cache.get(drvPath)
      : await tryDerivation(cache, drvPath);
    if (!drv) {
      const storeName = parseStorePath(drvPath, store.storeDir).name;
      nodes.push({
        id: drvPath,
        kind: "derivation",
        ...nameAndVersion(undefined, storeName),
        unknown: "derivation not available (garbage-collected, or malformed)",
        dependsOn: [],
      });
      continue;
    }
    for (const src of drv.inputSrcs) {
      // A source can itself be a .drv (builtins.derivation with a drv-valued input).
      if (isDerivationPath(src)) {
        visit(src);
      } else sources.add(strings.get(src));
    }
    for (const [input] of drv.inputDrvs) visit(input);
    const node: SbomNode = {
      id: drvPath,
      kind: "derivation",
      ...nameAndVersion(drv, parseStorePath(drvPath, store.storeDir).name),
      drvPath,
      outputs: drv.outputs.map(([name, o]) => ("path" in o ? { name, path: o.path } : { name })),
      dependsOn: [...drv.inputDrvs.map(([p]) => p), ...drv.inputSrcs].sort(),
    };
    const fixed = fixedOutput(drv);
    if (fixed) node.fixedOutput = fixed;
    nodes.push(strings.node(node));
  }
  const hashes = await store.narHashes([
    ...nodes.filter((n) => n.unknown === undefined).map((n) => n.id),
    ...sources,
  ]);
  for (const n of nodes) {
    const h = hashes.get(n.id);
    if (h && n.unknown === undefined) n.narHash = h;
  }
  for (const src of sources) {
    const narHash = hashes.get(src);
    const node: SbomNode = {
      id: src,
      kind: "source",
      ...parseDrvName(parseStorePath(src, store.storeDir).name),
      dependsOn: [],
    };
    if (narHash) node.narHash = narHash;
    else node.unknown = "not a valid store path";
    nodes.push(node);
  }
  return nodes;
}

export interface SbomRoots {
  /** Output paths (runtime closure roots). */
  outputs: string[];
  /** Derivations (build closure roots). */
  derivations: string[];
}

/** Gather the graph for the requested closure. */
export async function gatherSbomGraph(
  store: NixStore,
  roots: SbomRoots,
  closure: ClosureKind,
  meta: (node: SbomNode) => PackageMeta | undefined = () => undefined,
  cache: DerivationCache = new DerivationCache(store, { retain: false }),
): Promise<SbomGraph> {
  const byId = new Map<string, SbomNode>();
  const strings = new Strings();
  if (closure !== "build")
    for (const n of await runtimeNodes(store, roots.outputs, cache, strings)) byId.set(n.id, n);
  if (closure !== "runtime") {
    for (const n of await buildNodes(store, roots.derivations, cache, strings)) {
      if (!byId.has(n.id)) byId.set(n.id, n);
    }
    // In "both", an output also depends on the derivation that built it.
    for (const n of byId.values()) {
      if (
        n.kind === "path" &&
        n.drvPath &&
        byId.has(n.drvPath) &&
        !n.dependsOn.includes(n.drvPath)
      ) {
        n.dependsOn = [...n.dependsOn, n.drvPath].sort();
      }
    }
  }
  const nodes = [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  for (const n of nodes) {
    const m = meta(n);
    if (m) n.meta = m;
  }
  const rootPaths =
    closure === "build"
      ? roots.derivations
      : [...roots.outputs, ...(closure === "both" ? roots.derivations : [])];
  const registered = (await store.pathInfos(roots.outputs)).values();
  const times = [...registered]
    .map((i) => i.registrationTime)
    .filter((t): t is number => t !== undefined);
  return {
    closure,
    roots: [...rootPaths].sort(),
    nodes,
    ...(times.length > 0 ? { rootsRegisteredAt: Math.max(...times) } : {}),
  };
}
