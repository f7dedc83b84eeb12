import type { PackageMeta, SbomNode } from "./graph.js";

// Package metadata in the shape nixpkgs' `meta` has (`nix eval --json .meta`,
// `nix-env -qa --meta --json`). Only what is there is taken; nothing is guessed.

interface RawMeta {
  description?: unknown;
  homepage?: unknown;
  license?: unknown;
}

function licenseName(l: unknown): string | undefined {
  if (typeof l === "string") return l;
  if (l && typeof l === "object") {
    const o = l as { spdxId?: unknown; shortName?: unknown; fullName?: unknown };
    for (const v of [o.spdxId, o.shortName, o.fullName]) if (typeof v === "string") return v;
  }
  return undefined;
}

export function packageMeta(raw: unknown): PackageMeta | undefined {
  if (!raw || typeof raw !== "object") return undefined;
  const m = raw as RawMeta;
  const out: PackageMeta = {};
  if (typeof m.description === "string") out.description = m.description;
  const homepage = Array.isArray(m.homepage) ? (m.homepage as unknown[])[0] : m.homepage;
  if (typeof homepage === "string") out.homepage = homepage;
  const licenses = (
    Array.isArray(m.license) ? (m.license as unknown[]) : m.license === undefined ? [] : [m.license]
  )
    .map(licenseName)
    .filter((l): l is string => l !== undefined);
  if (licenses.length > 0) out.licenses = licenses;
  return Object.keys(out).length > 0 ? out : undefined;
}

/**
 * A lookup over `nix-env -qa --meta --json` output ({attr: {name, meta}}): a node
 * matches by its full name (`name-version`).
 */
export function metaLookup(json: unknown): (node: SbomNode) => PackageMeta | undefined {
  const byName = new Map<string, PackageMeta>();
  if (json && typeof json === "object") {
    for (const entry of Object.values(json as Record<string, unknown>)) {
      const e = entry as { name?: unknown; meta?: unknown } | null;
      const meta = packageMeta(e?.meta);
      if (typeof e?.name === "string" && meta) byName.set(e.name, meta);
    }
  }
  return (node) => byName.get(node.version ? `${node.name}-${node.version}` : node.name);
}
