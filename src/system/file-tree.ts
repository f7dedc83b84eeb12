import { createHash } from "node:crypto";
import { lstatSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import type { TreeEntry } from "../repro/index.js";

/** Every file, directory and symlink under `root`, with content hashes, sorted by path. */
export function listTree(root: string): TreeEntry[] {
  const out: TreeEntry[] = [];
  const walk = (rel: string) => {
    const abs = rel === "" ? root : join(root, rel);
    const st = lstatSync(abs);
    if (st.isSymbolicLink()) {
      out.push({ path: rel, type: "symlink", target: readlinkSync(abs) });
    } else if (st.isDirectory()) {
      out.push({ path: rel, type: "directory" });
      for (const name of readdirSync(abs).sort()) walk(rel === "" ? name : `${rel}/${name}`);
    } else {
      out.push({
        path: rel,
        type: "regular",
        size: st.size,
        executable: (st.mode & 0o100) !== 0,
        sha256: createHash("sha256").update(readFileSync(abs)).digest("hex"),
      });
    }
  };
  walk("");
  return out;
}
