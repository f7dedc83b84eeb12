import { mkdirSync } from "node:fs";
import { resolve, sep } from "node:path";

/**
 * `mkdir -p`, one level at a time; `mode` for the directories it makes. Not Node's
 * `mkdirSync(dir, { recursive: true })`, which spins forever where mkdir answers
 * ENOENT under a directory that exists (anywhere in /proc): this throws that error.
 * Any error but EEXIST is thrown as mkdir gave it.
 */
export function makeDirs(dir: string, mode?: number): void {
  let path = "";
  for (const part of resolve(dir).split(sep).slice(1)) {
    path += sep + part;
    try {
      mkdirSync(path, mode === undefined ? undefined : { mode });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
  }
}
