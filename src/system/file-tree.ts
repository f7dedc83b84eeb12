import { createHash } from "node:crypto";
import { createReadStream, lstatSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
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

/** The sha256 (hex) of a file's bytes, streamed. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}
