// Version orderings advisories are written in. Pure.

/**
 * Nix's own ordering, `builtins.compareVersions` (libstore names.cc): versions split
 * into components at `.` and `-` and between digits and letters; numbers compare
 * numerically; an empty component is less than a number; `pre` is less than
 * anything else; a number is greater than a word (so 2.3a < 2.3.1); words compare
 * as strings. Returns -1, 0 or 1.
 */
export function compareNixVersions(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const [c1, ni] = nextComponent(a, i);
    const [c2, nj] = nextComponent(b, j);
    i = ni;
    j = nj;
    if (componentLess(c1, c2)) return -1;
    if (componentLess(c2, c1)) return 1;
  }
  return 0;
}

const isDigit = (c: string | undefined) => c !== undefined && c >= "0" && c <= "9";

function nextComponent(s: string, from: number): [string, number] {
  let p = from;
  while (p < s.length && (s[p] === "." || s[p] === "-")) p++;
  const start = p;
  if (isDigit(s[p])) while (p < s.length && isDigit(s[p])) p++;
  else while (p < s.length && !isDigit(s[p]) && s[p] !== "." && s[p] !== "-") p++;
  return [s.slice(start, p), p];
}

function componentLess(c1: string, c2: string): boolean {
  const n1 = /^[0-9]+$/.test(c1) ? BigInt(c1) : undefined;
  const n2 = /^[0-9]+$/.test(c2) ? BigInt(c2) : undefined;
  if (n1 !== undefined && n2 !== undefined) return n1 < n2;
  if (c1 === "" && n2 !== undefined) return true;
  if (c1 === "pre" && c2 !== "pre") return true;
  if (c2 === "pre") return false;
  if (n2 !== undefined) return true;
  if (n1 !== undefined) return false;
  return c1 < c2;
}

/** Semantic Versioning 2.0.0 precedence (a leading "v" allowed); undefined when either is not SemVer. */
export function compareSemver(a: string, b: string): number | undefined {
  const pa = parseSemver(a);
  const pb = parseSemver(b);
  if (!pa || !pb) return undefined;
  for (let k = 0; k < 3; k++) {
    const d = (pa.core[k] ?? 0n) - (pb.core[k] ?? 0n);
    if (d !== 0n) return d < 0n ? -1 : 1;
  }
  if (pa.pre.length === 0 || pb.pre.length === 0) {
    return pa.pre.length === pb.pre.length ? 0 : pa.pre.length === 0 ? 1 : -1;
  }
  for (let k = 0; k < Math.max(pa.pre.length, pb.pre.length); k++) {
    const x = pa.pre[k];
    const y = pb.pre[k];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    const nx = /^[0-9]+$/.test(x);
    const ny = /^[0-9]+$/.test(y);
    if (nx && ny) {
      const d = BigInt(x) - BigInt(y);
      if (d !== 0n) return d < 0n ? -1 : 1;
    } else if (nx !== ny) return nx ? -1 : 1;
    else if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

function parseSemver(v: string): { core: bigint[]; pre: string[] } | undefined {
  const m =
    /^v?(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$/.exec(
      v,
    );
  if (!m) return undefined;
  return {
    core: [BigInt(m[1] ?? "0"), BigInt(m[2] ?? "0"), BigInt(m[3] ?? "0")],
    pre: m[4] ? m[4].split(".") : [],
  };
}

/**
 * Whether a Nix version is a snapshot of a development branch (nixpkgs'
 * `unstable-YYYY-MM-DD` and `0-unstable-YYYY-MM-DD` conventions): its numbers are a
 * date, not a release, so release ranges say nothing about it.
 */
export function isUnstableVersion(name: string, version: string): boolean {
  return /(^|-)unstable($|-)/.test(version) || /-unstable$/.test(name);
}
