import type { PackageMeta, SbomNode } from "./graph.js";

// Package metadata in the shape nixpkgs' `meta` has (`nix eval --json .meta`,
// `nix-env -qa --meta --json`). Only what is there is taken; nothing is guessed.

interface RawMeta {
  description?: unknown;
  homepage?: unknown;
  license?: unknown;
  identifiers?: unknown;
  knownVulnerabilities?: unknown;
}

const strings = (v: unknown): string[] =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === "string" && x !== "") : [];

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
  // nixpkgs' meta.identifiers (check-meta.nix): cpe when every CPE part is known,
  // possibleCPEs when the version had to be guessed; purl/purls where given.
  const ids = (m.identifiers ?? {}) as {
    cpe?: unknown;
    possibleCPEs?: unknown;
    purl?: unknown;
    purls?: unknown;
  };
  const cpes = [
    ...(typeof ids.cpe === "string" ? [ids.cpe] : []),
    ...(Array.isArray(ids.possibleCPEs) ? ids.possibleCPEs : []).flatMap((c: unknown) =>
      typeof (c as { cpe?: unknown } | null)?.cpe === "string" ? [(c as { cpe: string }).cpe] : [],
    ),
  ];
  if (cpes.length > 0) out.cpes = [...new Set(cpes)];
  const purls = [...(typeof ids.purl === "string" ? [ids.purl] : []), ...strings(ids.purls)];
  if (purls.length > 0) out.purls = [...new Set(purls)];
  const known = strings(m.knownVulnerabilities);
  if (known.length > 0) out.knownVulnerabilities = known;
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
