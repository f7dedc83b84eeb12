// Which files of two builds of one output differ: the report that a
// reproducibility attestation links to by digest.

export interface TreeEntry {
  /** Relative to the output's root; "" is the root itself. */
  readonly path: string;
  readonly type: "regular" | "directory" | "symlink";
  readonly size?: number;
  readonly executable?: boolean;
  /** sha256 of a regular file's contents, lower-case hex. */
  readonly sha256?: string;
  readonly target?: string;
}

export type Change = "modified" | "added" | "removed" | "type-changed" | "mode-changed";

export interface FileDifference {
  readonly path: string;
  readonly change: Change;
  /** The entry in the stored copy (absent when added). */
  readonly stored?: TreeEntry;
  /** The entry in the rebuild (absent when removed). */
  readonly rebuild?: TreeEntry;
}

export interface OutputDiff {
  readonly output: string;
  readonly storedPath: string;
  readonly rebuildPath: string;
  readonly files: readonly FileDifference[];
}

export const DIFF_MEDIA_TYPE = "application/vnd.provenix.repro-diff+json";

export interface DiffReport {
  readonly mediaType: typeof DIFF_MEDIA_TYPE;
  readonly derivation: string;
  readonly outputs: readonly OutputDiff[];
}

function changeOf(a: TreeEntry, b: TreeEntry): Change | undefined {
  if (a.type !== b.type) return "type-changed";
  if (a.type === "regular") {
    if (a.sha256 !== b.sha256 || a.size !== b.size) return "modified";
    if (Boolean(a.executable) !== Boolean(b.executable)) return "mode-changed";
  }
  if (a.type === "symlink" && a.target !== b.target) return "modified";
  return undefined;
}

/** Compare two listings of one output, sorted by path. */
export function diffTrees(stored: readonly TreeEntry[], rebuild: readonly TreeEntry[]) {
  const a = new Map(stored.map((e) => [e.path, e]));
  const b = new Map(rebuild.map((e) => [e.path, e]));
  const paths = [...new Set([...a.keys(), ...b.keys()])].sort();
  const out: FileDifference[] = [];
  for (const path of paths) {
    const x = a.get(path);
    const y = b.get(path);
    if (x && !y) out.push({ path, change: "removed", stored: x });
    else if (!x && y) out.push({ path, change: "added", rebuild: y });
    else if (x && y) {
      const change = changeOf(x, y);
      if (change) out.push({ path, change, stored: x, rebuild: y });
    }
  }
  return out;
}

/** One line per differing file, for people. */
export function describeDifference(d: FileDifference): string {
  const where = d.path === "" ? "(root)" : d.path;
  const size = (e?: TreeEntry) =>
    e?.type === "regular" ? `${e.size ?? 0} B sha256:${(e.sha256 ?? "").slice(0, 12)}` : e?.type;
  switch (d.change) {
    case "added":
      return `+ ${where} (${size(d.rebuild) ?? ""}, only in the rebuild)`;
    case "removed":
      return `- ${where} (${size(d.stored) ?? ""}, only in the stored copy)`;
    case "type-changed":
      return `~ ${where}: ${d.stored?.type ?? ""} -> ${d.rebuild?.type ?? ""}`;
    case "mode-changed":
      return `~ ${where}: executable ${String(Boolean(d.stored?.executable))} -> ${String(Boolean(d.rebuild?.executable))}`;
    case "modified":
      return d.stored?.type === "symlink"
        ? `~ ${where}: -> ${d.stored.target ?? ""} vs -> ${d.rebuild?.target ?? ""}`
        : `~ ${where}: ${size(d.stored) ?? ""} vs ${size(d.rebuild) ?? ""}`;
  }
}
