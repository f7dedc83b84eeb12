// The local vulnerability database (provenix vulns update): OSV and CVE JSON 5
// records, normalised, in a SQLite file, indexed by the names a package may have.
// An import is one transaction: all its records or none.
import { createHash } from "node:crypto";
import { deflateRawSync, inflateRawSync } from "node:zlib";
import { mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import Database from "better-sqlite3";
import type yauzl from "yauzl";
import {
  affectedKeys,
  parseCve,
  parseCycloneDxVex,
  parseOpenVex,
  parseOsv,
  VulnError,
  type Advisory,
  type VexStatement,
} from "../vulns/index.js";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS advisories (
  id        TEXT PRIMARY KEY,
  source    TEXT NOT NULL CHECK (source IN ('osv', 'cve')),
  modified  TEXT NOT NULL,
  sha256    TEXT NOT NULL,          -- of the record's bytes as imported
  advisory  TEXT NOT NULL,          -- the normalised Advisory, JSON
  record    BLOB                    -- the record's bytes, deflated: normalised again when FORMAT changes
);
CREATE TABLE IF NOT EXISTS names (
  name      TEXT NOT NULL,          -- a lookup key (affectedKeys): a name, cpe:..., purl:..., repo:...
  id        TEXT NOT NULL REFERENCES advisories(id) ON DELETE CASCADE,
  PRIMARY KEY (name, id)
);
CREATE INDEX IF NOT EXISTS names_id ON names(id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
`;

/**
 * The version of the normalised form (Advisory, and the keys of `names`). When it
 * changes, the stored records are normalised again on open.
 */
const FORMAT = "2";

export interface ImportResult {
  readonly files: number;
  readonly added: number;
  readonly updated: number;
  readonly unchanged: number;
}

/** The `.json` entries of a zip archive (OSV publishes one per ecosystem: all.zip). */
async function zipEntries(file: string): Promise<{ file: string; bytes: Buffer }[]> {
  const { default: zipReader } = await import("yauzl"); // only an update reads zips
  let zip: yauzl.ZipFile;
  try {
    zip = await zipReader.openPromise(file, { lazyEntries: true });
  } catch (e) {
    throw new VulnError("MALFORMED_RECORD", `${file}: not a zip archive: ${(e as Error).message}`);
  }
  const out: { file: string; bytes: Buffer }[] = [];
  await new Promise<void>((resolve, reject) => {
    const fail = (e: Error) => reject(new VulnError("MALFORMED_RECORD", `${file}: ${e.message}`));
    zip.on("error", fail);
    zip.on("end", () => resolve());
    zip.on("entry", (entry: yauzl.Entry) => {
      if (!entry.fileName.endsWith(".json")) {
        zip.readEntry();
        return;
      }
      zip.openReadStream(entry, (err, stream) => {
        if (err) {
          fail(err);
          return;
        }
        const chunks: Buffer[] = [];
        stream.on("data", (c: Buffer) => chunks.push(c));
        stream.on("error", fail);
        stream.on("end", () => {
          out.push({ file: `${file}:${entry.fileName}`, bytes: Buffer.concat(chunks) });
          zip.readEntry();
        });
      });
    });
    zip.readEntry();
  });
  zip.close();
  return out.sort((a, b) => a.file.localeCompare(b.file));
}

/** The record files under a file or directory (.json, and .zip archives of them), sorted. */
function recordFiles(from: string): string[] {
  let st;
  try {
    st = statSync(from);
  } catch (e) {
    throw new VulnError(
      "MALFORMED_RECORD",
      `cannot read ${from}: ${(e as NodeJS.ErrnoException).code ?? "unreadable"}`,
    );
  }
  if (st.isFile()) return [from];
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) =>
      a.name.localeCompare(b.name),
    )) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith(".json") || e.name.endsWith(".zip")) out.push(p);
    }
  };
  walk(from);
  return out;
}

/**
 * The statements of a VEX file, OpenVEX or CycloneDX (told apart by their shape); a
 * file that cannot be read or parsed is a MALFORMED_VEX error naming it.
 */
export function readVex(file: string): VexStatement[] {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new VulnError(
      "MALFORMED_VEX",
      `${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
  return (json as { bomFormat?: unknown } | null)?.bomFormat === "CycloneDX"
    ? parseCycloneDxVex(json, file)
    : parseOpenVex(json, file);
}

/** An OSV or CVE JSON 5 record, told apart by its shape. */
export function parseRecord(bytes: Buffer, file: string): Advisory {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString("utf8"));
  } catch (e) {
    throw new VulnError("MALFORMED_RECORD", `${file}: not JSON: ${(e as Error).message}`);
  }
  const o = json as { dataType?: unknown; id?: unknown } | null;
  if (o !== null && typeof o === "object" && o.dataType === "CVE_RECORD")
    return parseCve(json, file);
  if (o !== null && typeof o === "object" && typeof o.id === "string") return parseOsv(json, file);
  throw new VulnError("MALFORMED_RECORD", `${file}: neither an OSV record nor a CVE JSON 5 record`);
}

export class VulnDb {
  private constructor(
    private readonly db: Database.Database,
    readonly path: string,
  ) {}

  static open(path: string): VulnDb {
    try {
      mkdirSync(dirname(path), { recursive: true });
      const db = new Database(path);
      db.pragma("journal_mode = WAL");
      db.pragma("foreign_keys = ON");
      db.exec(SCHEMA);
      const v = new VulnDb(db, path);
      v.migrate();
      return v;
    } catch (e) {
      throw new VulnError(
        "DATABASE",
        `cannot open the vulnerability database ${path}: ${(e as Error).message}`,
      );
    }
  }

  close(): void {
    this.db.close();
  }

  /**
   * Bring a database of an earlier FORMAT up to date: records kept with their
   * bytes are normalised again; a row from before the bytes were kept keeps its
   * entry and is rewritten by the next import of its record.
   */
  private migrate(): void {
    const columns = this.db.pragma("table_info(advisories)") as { name: string }[];
    if (!columns.some((c) => c.name === "record"))
      this.db.exec("ALTER TABLE advisories ADD COLUMN record BLOB");
    const format = this.db.prepare("SELECT value FROM meta WHERE key = 'format'").get() as
      { value: string } | undefined;
    if (format?.value === FORMAT) return;
    const rows = this.db.prepare("SELECT id, record FROM advisories").all() as {
      id: string;
      record: Buffer | null;
    }[];
    const forget = this.db.prepare("UPDATE advisories SET sha256 = '' WHERE id = ?");
    const renormalised = this.db.prepare("UPDATE advisories SET advisory = ? WHERE id = ?");
    this.db.transaction(() => {
      for (const r of rows) {
        if (r.record === null) {
          forget.run(r.id);
          continue;
        }
        const a = parseRecord(inflateRawSync(r.record), `stored record ${r.id}`);
        renormalised.run(JSON.stringify(a), r.id);
        this.index(a);
      }
      this.db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('format', ?)").run(FORMAT);
    })();
  }

  /** Index an advisory under every key of its affected entries. */
  private index(a: Advisory): void {
    const q = (this.indexing ??= {
      drop: this.db.prepare("DELETE FROM names WHERE id = ?"),
      add: this.db.prepare("INSERT OR IGNORE INTO names (name, id) VALUES (?, ?)"),
    });
    q.drop.run(a.id);
    for (const k of new Set(a.affected.flatMap(affectedKeys))) q.add.run(k, a.id);
  }

  private indexing: { drop: Database.Statement; add: Database.Statement } | undefined;

  /**
   * Import every record under `from`, all in one transaction: a malformed record
   * anywhere leaves the database as it was. A record whose bytes are unchanged
   * writes nothing.
   */
  async importFrom(from: string, now = new Date()): Promise<ImportResult> {
    const files: { file: string; bytes: Buffer }[] = [];
    for (const file of recordFiles(from)) {
      if (file.endsWith(".zip")) files.push(...(await zipEntries(file)));
      else files.push({ file, bytes: readFileSync(file) });
    }
    const parsed = files.map(({ file, bytes }) => ({
      advisory: parseRecord(bytes, file),
      bytes,
      sha256: createHash("sha256").update(bytes).digest("hex"),
    }));
    const get = this.db.prepare("SELECT sha256 FROM advisories WHERE id = ?");
    const put = this.db.prepare(
      "INSERT INTO advisories (id, source, modified, sha256, advisory, record) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET source = excluded.source, modified = excluded.modified, sha256 = excluded.sha256, advisory = excluded.advisory, record = excluded.record",
    );
    let added = 0;
    let updated = 0;
    let unchanged = 0;
    this.db.transaction(() => {
      for (const { advisory: a, bytes, sha256 } of parsed) {
        const row = get.get(a.id) as { sha256: string } | undefined;
        if (row?.sha256 === sha256) {
          unchanged++;
          continue;
        }
        if (row) updated++;
        else added++;
        put.run(a.id, a.source, a.modified, sha256, JSON.stringify(a), deflateRawSync(bytes));
        this.index(a);
      }
      this.db
        .prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('updated', ?)")
        .run(now.toISOString());
    })();
    return { files: files.length, added, updated, unchanged };
  }

  /** Advisories indexed under any of these keys (packageKeys: a name, cpe:..., purl:..., repo:...), by id. */
  forKeys(keys: readonly string[]): Advisory[] {
    const q = (this.byKey ??= this.prepare(
      "SELECT a.id, a.advisory FROM names n JOIN advisories a ON a.id = n.id WHERE n.name = ?",
    ));
    const found = new Map<string, string>();
    for (const k of keys)
      for (const r of q.all(k) as { id: string; advisory: string }[]) found.set(r.id, r.advisory);
    return [...found.keys()].sort().map((id) => {
      try {
        return JSON.parse(found.get(id) as string) as Advisory;
      } catch {
        throw new VulnError(
          "DATABASE",
          `the vulnerability database ${this.path} is damaged: advisory ${id} is not JSON (import its record again)`,
        );
      }
    });
  }

  private byKey: Database.Statement | undefined;

  /** A statement on this database; a database file that is not one is a DATABASE error naming it. */
  private prepare(sql: string): Database.Statement {
    try {
      return this.db.prepare(sql);
    } catch (e) {
      throw new VulnError(
        "DATABASE",
        `the vulnerability database ${this.path} is damaged: ${(e as Error).message}`,
      );
    }
  }

  count(): number {
    return (this.db.prepare("SELECT count(*) AS n FROM advisories").get() as { n: number }).n;
  }

  /** When the database was last updated, if ever. */
  updatedAt(): Date | undefined {
    const r = this.db.prepare("SELECT value FROM meta WHERE key = 'updated'").get() as
      { value: string } | undefined;
    return r ? new Date(r.value) : undefined;
  }
}
