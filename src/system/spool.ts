import { readdirSync, readFileSync, renameSync, statSync, unlinkSync } from "node:fs";
import { makeDirs } from "./make-dirs.js";
import { join } from "node:path";
import { ChainsError, parseSpoolRecord, type SpoolRecord } from "../chains/index.js";

/** A record left by the post-build-hook. */
export interface SpoolEntry {
  readonly file: string;
  readonly record: SpoolRecord;
  /** When the build finished: the file's modification time, ms. */
  readonly finishedAt: number;
}

/** A spool file that cannot be read as a record (moved to `rejected/`). */
export interface RejectedSpoolFile {
  readonly file: string;
  readonly error: string;
}

/** A record still without its final newline this long after its last write was cut short. */
const INCOMPLETE_AFTER_MS = 30_000;

/** The directory the post-build-hook writes to and the daemon drains. */
export class SpoolDir {
  constructor(readonly dir: string) {}

  ensure(): void {
    makeDirs(this.dir, 0o755);
  }

  /** Complete records, oldest first; unreadable ones are moved aside and reported. */
  take(now: number, limit = 10_000): { entries: SpoolEntry[]; rejected: RejectedSpoolFile[] } {
    const entries: SpoolEntry[] = [];
    const rejected: RejectedSpoolFile[] = [];
    let names: string[];
    try {
      names = readdirSync(this.dir).filter((n) => !n.startsWith(".") && n !== "rejected");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return { entries, rejected };
      throw e;
    }
    for (const name of names.slice(0, limit)) {
      const file = join(this.dir, name);
      let text: string;
      let mtimeMs: number;
      try {
        mtimeMs = statSync(file).mtimeMs;
        text = readFileSync(file, "utf8");
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOENT") continue;
        throw e;
      }
      try {
        const record = parseSpoolRecord(text);
        if (record) entries.push({ file, record, finishedAt: Math.round(mtimeMs) });
        else if (now - mtimeMs > INCOMPLETE_AFTER_MS)
          throw new ChainsError("BAD_SPOOL_RECORD", "incomplete record (the hook was cut short)");
      } catch (e) {
        if (!(e instanceof ChainsError)) throw e;
        rejected.push({ file, error: e.message });
        this.reject(file);
      }
    }
    entries.sort((a, b) => a.finishedAt - b.finishedAt || a.file.localeCompare(b.file));
    return { entries, rejected };
  }

  /** Forget a record once what it said is safely in the journal. */
  done(file: string): void {
    try {
      unlinkSync(file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    }
  }

  private reject(file: string): void {
    const dir = join(this.dir, "rejected");
    makeDirs(dir);
    renameSync(file, join(dir, file.slice(this.dir.length + 1)));
  }
}
