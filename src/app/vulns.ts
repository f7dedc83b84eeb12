// provenix vulns: the packages of a closure, as Nix knows them, matched against the
// local vulnerability database.
import { DerivationCache } from "../attest/index.js";
import type { NixStore } from "../nix/index.js";
import { gatherSbomGraph, type ClosureKind, type SbomRoots } from "../sbom/index.js";
import type { VulnDb } from "../system/vuln-db.js";
import { matchPackage, type Decision, type Finding, type Package } from "../vulns/index.js";

const baseName = (p: string) => p.slice(p.lastIndexOf("/") + 1).replace(/^[0-9a-z]{32}-/, "");

/** One package per derivation of the closure (or per path whose deriver is unknown). */
export async function closurePackages(
  nix: NixStore,
  roots: SbomRoots,
  closure: ClosureKind,
): Promise<Package[]> {
  // One cache for the graph and the patches: each .drv is read once.
  const derivations = new DerivationCache(nix);
  const graph = await gatherSbomGraph(nix, roots, closure, () => undefined, derivations);
  const byKey = new Map<
    string,
    { name: string; version: string; drvPath?: string; paths: string[]; urls: string[] }
  >();
  for (const n of graph.nodes) {
    if (n.kind === "source") continue;
    const key = n.drvPath ?? n.id;
    const entry = byKey.get(key) ?? {
      name: n.name,
      version: n.version,
      ...(n.drvPath ? { drvPath: n.drvPath } : {}),
      paths: [],
      urls: [],
    };
    if (n.kind === "path") entry.paths.push(n.id);
    entry.urls.push(...(n.fixedOutput?.urls ?? []));
    byKey.set(key, entry);
  }
  const packages: Package[] = [];
  for (const e of byKey.values()) {
    let patches: string[] = [];
    if (e.drvPath) {
      try {
        const d = await derivations.get(e.drvPath);
        const value = d.env.find(([k]) => k === "patches")?.[1] ?? "";
        patches = value
          .split(/\s+/)
          .filter((x) => x !== "")
          .map(baseName);
      } catch {
        // a garbage-collected .drv: no patches known (the package is still scanned)
      }
    }
    packages.push({
      name: e.name,
      version: e.version,
      ...(e.drvPath ? { drvPath: e.drvPath } : {}),
      paths: e.paths.sort(),
      patches,
      sourceUrls: [...new Set(e.urls)],
    });
  }
  return packages.sort(
    (a, b) => a.name.localeCompare(b.name) || a.version.localeCompare(b.version),
  );
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
    const r = matchPackage(p, db.forName(p.name));
    findings.push(...r.findings);
    decisions.push(...r.decisions);
  }
  return { packages: packages.length, findings, decisions };
}
