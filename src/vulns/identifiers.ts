// The identifiers a package and an advisory can share, as lookup keys: a name, a
// CPE's vendor and product, a package URL without its version, a source
// repository on a forge, and the name in a source archive's file name. Pure.
import { parseDrvName } from "../nix/store-path.js";

export interface Cpe {
  readonly part: string;
  readonly vendor: string;
  readonly product: string;
  /** `*` (any) or `-` (not applicable) when the name gives no version. */
  readonly version: string;
}

/** The fields of a CPE 2.3 formatted string (cpe:2.3:part:vendor:product:version:...), unescaped and lower-cased. */
export function parseCpe(cpe: string): Cpe | undefined {
  if (!cpe.startsWith("cpe:2.3:")) return undefined;
  const fields: string[] = [];
  let cur = "";
  for (let i = 8; i < cpe.length; i++) {
    const c = cpe[i] as string;
    if (c === "\\" && i + 1 < cpe.length) {
      cur += cpe[++i];
    } else if (c === ":") {
      fields.push(cur);
      cur = "";
    } else cur += c;
  }
  fields.push(cur);
  const [part, vendor, product, version] = fields;
  if (fields.length !== 11 || !part || !vendor || !product || version === undefined)
    return undefined;
  return {
    part: part.toLowerCase(),
    vendor: vendor.toLowerCase(),
    product: product.toLowerCase(),
    version,
  };
}

/** Whether a CPE version field names one version (not `*` any, not `-` not applicable). */
export const concreteCpeVersion = (v: string): boolean => v !== "*" && v !== "-" && v !== "";

export const nameKey = (name: string): string => name.toLowerCase();
export const cpeKey = (c: Cpe): string => `cpe:${c.vendor}:${c.product}`;

/** `purl:type/namespace/name` of a package URL (its version, qualifiers and subpath dropped). */
export function purlKey(purl: string): string | undefined {
  const m = /^pkg:([A-Za-z.+-][A-Za-z0-9.+-]*)\/([^@?#]+)/.exec(purl);
  if (!m) return undefined;
  const path = (m[2] as string)
    .split("/")
    .filter((s) => s !== "")
    .map((s) => {
      try {
        return decodeURIComponent(s);
      } catch {
        return s;
      }
    });
  if (path.length === 0) return undefined;
  const type = (m[1] as string).toLowerCase();
  // The purl specification makes namespace and name case-insensitive for these types.
  const fold = ["github", "gitlab", "bitbucket", "generic", "nix", "pypi", "npm"].includes(type);
  return `purl:${type}/${(fold ? path.map((s) => s.toLowerCase()) : path).join("/")}`;
}

const FORGES = ["github.com", "gitlab.com", "codeberg.org", "bitbucket.org"];

/** `repo:host/owner/name` of a URL on a code forge (a repository, an archive or a release file in it). */
export function repoKey(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url.replace(/^git\+/, "").replace(/^git:\/\//, "https://"));
  } catch {
    return undefined;
  }
  const host = u.hostname.toLowerCase().replace(/^www\./, "");
  if (!FORGES.includes(host)) return undefined;
  const [owner, name] = u.pathname.split("/").filter((s) => s !== "");
  if (!owner || !name) return undefined;
  return `repo:${host}/${owner.toLowerCase()}/${name.toLowerCase().replace(/\.git$/, "")}`;
}

const ARCHIVE =
  /\.(tar\.gz|tar\.xz|tar\.bz2|tar\.zst|tar\.lz|tar\.lzma|tgz|tbz2?|txz|tar|zip|gz|xz|bz2|zst)$/i;

/** The name and version in a source archive's file name (curl-8.3.0.tar.xz: curl 8.3.0), as parseDrvName splits it. */
export function sourceFileName(url: string): { name: string; version: string } | undefined {
  let file: string;
  try {
    const u = new URL(url);
    file = decodeURIComponent(u.pathname.slice(u.pathname.lastIndexOf("/") + 1));
  } catch {
    return undefined;
  }
  if (!ARCHIVE.test(file)) return undefined;
  const { name, version } = parseDrvName(file.replace(ARCHIVE, ""));
  return name !== "" && version !== "" ? { name, version } : undefined;
}
