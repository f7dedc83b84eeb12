// provenix vulns: the packages of a closure, as Nix knows them, matched against the
// local vulnerability database.
import { DerivationCache } from "../attest/index.js";
import type { Derivation, NixStore } from "../nix/index.js";
import {
  fixedOutput,
  gatherSbomGraph,
  type ClosureKind,
  type PackageMeta,
  type SbomNode,
  type SbomRoots,
} from "../sbom/index.js";
import type { VulnDb } from "../system/vuln-db.js";
import {
  matchPackage,
  packageKeys,
  sourceFileName,
  type Decision,
  type Finding,
  type Package,
} from "../vulns/index.js";

const baseName = (p: string) => p.slice(p.lastIndexOf("/") + 1).replace(/^[0-9a-z]{32}-/, "");

/**
 * One package per derivation of the closure (or per path whose deriver is unknown),
 * with its patches, the URLs of the fixed-output sources it is built from, and its
 * metadata where `meta` knows it. A fixed-output derivation that a package of the
 * closure is built from is that package's source, not a package of its own.
 */
export async function closurePackages(
  nix: NixStore,
  roots: SbomRoots,
  closure: ClosureKind,
  meta: (n: SbomNode) => PackageMeta | undefined = () => undefined,
): Promise<Package[]> {
  // One cache for the graph, the patches and the sources: each .drv is read once.
  const derivations = new DerivationCache(nix);
  const graph = await gatherSbomGraph(nix, roots, closure, meta, derivations);
  const read = async (drvPath: string): Promise<Derivation | undefined> => {
    try {
      return await derivations.get(drvPath);
    } catch {
      return undefined; // garbage-collected or unreadable: nothing known of it (the package is still scanned)
    }
  };
  // What each input derivation fetches (a fixed-output derivation with URLs is a
  // source, or a fetched patch), and where it puts it.
  const fetches = new Map<string, { urls: string[]; outputs: string[] }>();
  const fetchOf = async (drvPath: string) => {
    let f = fetches.get(drvPath);
    if (f === undefined) {
      const d = await read(drvPath);
      f = {
        urls: (d && fixedOutput(d)?.urls) || [],
        outputs: (d?.outputs ?? []).flatMap(([, o]) => ("path" in o ? [o.path] : [])),
      };
      fetches.set(drvPath, f);
    }
    return f;
  };
  const usedAsSource = new Set<string>();
  const byKey = new Map<
    string,
    {
      name: string;
      version: string;
      drvPath?: string;
      paths: string[];
      meta?: PackageMeta;
      /** The URLs it fetches, when it is a fixed-output derivation. */
      fetches?: string[];
    }
  >();
  for (const n of graph.nodes) {
    if (n.kind === "source") continue;
    const key = n.drvPath ?? n.id;
    const entry = byKey.get(key) ?? {
      name: n.name,
      version: n.version,
      ...(n.drvPath ? { drvPath: n.drvPath } : {}),
      paths: [],
      ...(n.meta ? { meta: n.meta } : {}),
      ...(n.fixedOutput ? { fetches: n.fixedOutput.urls } : {}),
    };
    if (n.kind === "path") entry.paths.push(n.id);
    byKey.set(key, entry);
  }
  const packages: Package[] = [];
  const fetched = new Set<Package>();
  for (const e of byKey.values()) {
    let patches: string[] = [];
    const urls: string[] = [...(e.fetches ?? [])];
    const d = e.drvPath ? await read(e.drvPath) : undefined;
    if (d) {
      const value = d.env.find(([k]) => k === "patches")?.[1] ?? "";
      const patchPaths = value.split(/\s+/).filter((x) => x !== "");
      patches = patchPaths.map(baseName);
      for (const [input] of d.inputDrvs) {
        const f = await fetchOf(input);
        if (f.urls.length === 0) continue;
        usedAsSource.add(input);
        // A fetched patch (fetchpatch) is not a source: its URLs may name the CVE it fixes.
        if (f.outputs.some((o) => patchPaths.includes(o))) patches.push(...f.urls);
        else urls.push(...f.urls);
      }
    }
    const pkg: Package = {
      name: e.name,
      version: e.version,
      ...(e.drvPath ? { drvPath: e.drvPath } : {}),
      paths: e.paths.sort(),
      patches,
      sourceUrls: [...new Set(urls)],
      ...(e.meta?.cpes ? { cpes: e.meta.cpes } : {}),
      ...(e.meta?.purls ? { purls: e.meta.purls } : {}),
      ...(e.meta?.knownVulnerabilities
        ? { knownVulnerabilities: e.meta.knownVulnerabilities }
        : {}),
    };
    packages.push(pkg);
    if (e.fetches?.length) fetched.add(pkg);
  }
  // A fixed-output derivation scanned on its own (a root, or one nothing here is built
  // from) is known by the name in its file name, without the archive suffix.
  return packages
    .filter((p) => p.drvPath === undefined || !usedAsSource.has(p.drvPath))
    .map((p) => {
      const file = fetched.has(p) ? sourceFileName(p.sourceUrls[0] ?? "") : undefined;
      return file ? { ...p, ...file } : p;
    })
    .sort((a, b) => a.name.localeCompare(b.name) || a.version.localeCompare(b.version));
}

export interface ScanResult {
  readonly packages: number;
  readonly findings: readonly Finding[];
  readonly decisions: readonly Decision[];
}

export function scan(db: VulnDb, packages: readonly Package[]): ScanResult {
  const findings: Finding[] = [];
  const decisions: Decision[] = [];
  for (const p of packages) {
    if (p.name === "" || p.version === "") continue;
    const r = matchPackage(p, db.forKeys(packageKeys(p)));
    findings.push(...r.findings);
    decisions.push(...r.decisions);
  }
  return { packages: packages.length, findings, decisions };
}
