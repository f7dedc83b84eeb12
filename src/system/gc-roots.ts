import { readdirSync, readlinkSync, symlinkSync, unlinkSync } from "node:fs";
import { makeDirs } from "./make-dirs.js";
import { userInfo } from "node:os";
import { basename, join } from "node:path";

/** Where the daemon keeps its GC roots: a directory Nix's garbage collector scans. */
export function defaultGcRootDir(stateDir = "/nix/var/nix"): string {
  const user = userInfo();
  return user.uid === 0
    ? join(stateDir, "gcroots", "provenix")
    : join(stateDir, "gcroots", "per-user", user.username, "provenix");
}

/**
 * GC roots for outputs not yet attested: one symlink per output under a
 * directory in Nix's gcroots, which `nix-store --gc` treats as a root.
 */
export class GcRoots {
  constructor(readonly dir: string) {}

  ensure(): void {
    makeDirs(this.dir);
  }

  protect(storePath: string): void {
    const link = join(this.dir, basename(storePath));
    try {
      symlinkSync(storePath, link);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      if (readlinkSync(link) !== storePath) {
        unlinkSync(link);
        symlinkSync(storePath, link);
      }
    }
  }

  release(storePath: string): void {
    try {
      unlinkSync(join(this.dir, basename(storePath)));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    }
  }

  /** The store paths rooted here. */
  list(): string[] {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw e;
    }
    const out: string[] = [];
    for (const n of names) {
      try {
        out.push(readlinkSync(join(this.dir, n)));
      } catch {
        // not a symlink: not ours
      }
    }
    return out.sort();
  }
}
