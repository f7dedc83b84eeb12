import { createHash } from "node:crypto";
import { accessSync, constants, statfsSync } from "node:fs";
import { makeDirs } from "../system/make-dirs.js";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import { StoreError } from "./error.js";
import { Journal, JOURNAL_SCHEMA } from "./journal.js";
import { PUSH_KIND_SCHEMA, PUSH_SCHEMA, Pushes } from "./pushes.js";
import { REBUILD_SCHEMA, Rebuilds } from "./rebuilds.js";
import { prepared } from "./table.js";

// "PVNX" as a big-endian 32-bit integer: marks a SQLite file as ours (PRAGMA application_id).
const APPLICATION_ID = 0x50564e58;

// MIGRATIONS[i] takes a store from schema version i to i + 1.
const MIGRATIONS = [
  `
CREATE TABLE attestations (
  id             INTEGER PRIMARY KEY,
  bundle_sha256  TEXT NOT NULL UNIQUE,   -- sha256 of the exact bundle bytes
  payload_sha256 TEXT NOT NULL,          -- sha256 of the signed statement bytes
  keyid          TEXT NOT NULL,
  bundle         BLOB NOT NULL,          -- the exact bytes, never re-serialised
  predicate_type TEXT NOT NULL,
  builder_id     TEXT,
  derivation     TEXT,
  created_at     INTEGER NOT NULL,       -- ms since the epoch
  UNIQUE (payload_sha256, keyid)
);
CREATE TABLE subjects (
  attestation_id INTEGER NOT NULL REFERENCES attestations(id) ON DELETE CASCADE,
  name           TEXT NOT NULL,
  sha256         TEXT,
  PRIMARY KEY (attestation_id, name)
);
CREATE INDEX subjects_name ON subjects(name);
CREATE INDEX subjects_sha256 ON subjects(sha256);
CREATE INDEX attestations_derivation ON attestations(derivation);
CREATE INDEX attestations_predicate_type ON attestations(predicate_type);
CREATE INDEX attestations_builder_id ON attestations(builder_id);
CREATE INDEX attestations_created_at ON attestations(created_at);
`,
  JOURNAL_SCHEMA,
  REBUILD_SCHEMA,
  PUSH_SCHEMA,
  PUSH_KIND_SCHEMA,
  // What refers to an attestation, indexed: provenix gc updates it when it removes one.
  `
CREATE INDEX journal_attestation ON journal(attestation_id);
CREATE INDEX rebuild_items_attestation ON rebuild_items(attestation_id);
`,
];
const SCHEMA_VERSION = MIGRATIONS.length;

export interface NewAttestation {
  readonly bundle: Buffer;
  /** The signed statement bytes (the DSSE payload). */
  readonly payload: Buffer;
  readonly keyid: string;
  readonly predicateType: string;
  readonly builderId?: string;
  readonly derivation?: string;
  readonly subjects: readonly { readonly name: string; readonly sha256?: string }[];
}

export interface StoredAttestation {
  readonly id: number;
  readonly bundleSha256: string;
  readonly bundle: Buffer;
  readonly keyid: string;
  readonly predicateType: string;
  readonly builderId: string | null;
  readonly derivation: string | null;
  readonly createdAt: Date;
  readonly subjects: readonly { readonly name: string; readonly sha256: string | null }[];
}

export interface AttestationQuery {
  subjectName?: string;
  subjectSha256?: string;
  derivation?: string;
  predicateType?: string;
  builderId?: string;
  since?: Date;
}

interface Row {
  id: number;
  bundle_sha256: string;
  bundle: Buffer;
  keyid: string;
  predicate_type: string;
  builder_id: string | null;
  derivation: string | null;
  created_at: number;
}

function sha256(b: Uint8Array): string {
  return createHash("sha256").update(b).digest("hex");
}

/** SQLite reports a write that found no space as a generic I/O error at times. */
function diskFull(path: string): boolean {
  try {
    const s = statfsSync(dirname(path));
    return s.bavail === 0 || s.bfree === 0;
  } catch {
    return false;
  }
}

/** SQLite only says "unable to open"; the directory tells why. */
function whyUnwritable(path: string): string {
  try {
    accessSync(dirname(path), constants.W_OK);
    return "";
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === "EROFS"
      ? " (read-only file system)"
      : code === "EACCES"
        ? " (permission denied)"
        : "";
  }
}

function storeError(e: unknown, path: string): StoreError {
  if (e instanceof StoreError) return e;
  const code = (e as { code?: string }).code ?? "";
  const msg = (e as Error).message;
  if (code === "SQLITE_NOTADB" || code.startsWith("SQLITE_CORRUPT")) {
    return new StoreError(
      "CORRUPT",
      `attestation store ${path} is corrupt or not a SQLite database`,
      { cause: e },
    );
  }
  if (
    code === "SQLITE_FULL" ||
    code === "ENOSPC" ||
    (code.startsWith("SQLITE_IOERR") && diskFull(path))
  )
    return new StoreError("FULL", `attestation store ${path}: disk is full`, { cause: e });
  if (code.startsWith("SQLITE_IOERR"))
    return new StoreError("IO", `attestation store ${path}: I/O error (${code})`, { cause: e });
  if (code.startsWith("SQLITE_BUSY")) {
    return new StoreError("BUSY", `attestation store ${path} is locked by another process`, {
      cause: e,
    });
  }
  if (
    code.startsWith("SQLITE_READONLY") ||
    code.startsWith("SQLITE_CANTOPEN") ||
    ["EACCES", "ENOTDIR", "EROFS", "EPERM"].includes(code)
  ) {
    return new StoreError(
      "UNWRITABLE",
      `cannot open attestation store ${path}: ${msg}${whyUnwritable(path)}`,
      { cause: e },
    );
  }
  return new StoreError("CORRUPT", `attestation store ${path}: ${msg}`, { cause: e });
}

/** The embedded attestation store: one SQLite file, safe for several processes at once. */
export class AttestationStore {
  private constructor(
    private readonly db: Database.Database,
    readonly path: string,
  ) {}

  static open(path: string): AttestationStore {
    try {
      makeDirs(dirname(path), 0o700);
      const db = new Database(path, { timeout: 15_000 });
      try {
        const store = new AttestationStore(db, path);
        store.init();
        return store;
      } catch (e) {
        db.close();
        throw e;
      }
    } catch (e) {
      throw storeError(e, path);
    }
  }

  private init(): void {
    // Check and create under one write lock, so racing first runs see one state.
    this.db
      .transaction(() => {
        const appId = this.db.pragma("application_id", { simple: true }) as number;
        if (appId === 0) {
          const tables = this.db.prepare("SELECT count(*) AS n FROM sqlite_master").get() as {
            n: number;
          };
          if (tables.n > 0) {
            throw new StoreError(
              "FOREIGN",
              `${this.path} is a SQLite database, but not a provenix attestation store`,
            );
          }
        } else if (appId !== APPLICATION_ID) {
          throw new StoreError(
            "FOREIGN",
            `${this.path} is a SQLite database of another application`,
          );
        }
        const version = this.db.pragma("user_version", { simple: true }) as number;
        if (version > SCHEMA_VERSION) {
          throw new StoreError(
            "NEWER_SCHEMA",
            `${this.path} was written by a newer provenix (schema ${version}); upgrade provenix`,
          );
        }
        for (const migration of MIGRATIONS.slice(version)) this.db.exec(migration);
        if (version < SCHEMA_VERSION) {
          this.db.pragma(`application_id = ${APPLICATION_ID}`);
          this.db.pragma(`user_version = ${SCHEMA_VERSION}`);
        }
      })
      .immediate();
    // Only once the file is known to be ours: WAL lets readers and a writer overlap.
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("synchronous = NORMAL");
    // Checkpoint (copy the WAL back, and fsync) every 40 MB, not every 4: a batch of
    // 2,000 attestations is 10 MB of pages, and a checkpoint after each took 1 s of
    // the 4.3 s of 50,000 puts (bench/README.md, "Farm scale, third pass").
    this.db.pragma("wal_autocheckpoint = 10000");
    this.db.pragma("foreign_keys = ON");
  }

  close(): void {
    this.db.close();
  }

  private journalInstance?: Journal;

  /** The chains journal (observed outputs and their attestation status), in the same file. */
  get journal(): Journal {
    this.journalInstance ??= new Journal(this.db, (e) => storeError(e, this.path));
    return this.journalInstance;
  }

  private pushesInstance?: Pushes;

  /** The daemon's queue of image outputs to push. */
  get pushes(): Pushes {
    this.pushesInstance ??= new Pushes(this.db, (e) => storeError(e, this.path));
    return this.pushesInstance;
  }

  private rebuildsInstance?: Rebuilds;

  /** Reports linked by digest from attestations, and closure-rebuild runs. */
  get rebuilds(): Rebuilds {
    this.rebuildsInstance ??= new Rebuilds(this.db, (e) => storeError(e, this.path));
    return this.rebuildsInstance;
  }

  /** Run `fn` in one write transaction: everything it stores lands together or not at all. */
  transaction<T>(fn: () => T): T {
    try {
      return this.db.transaction(fn).immediate();
    } catch (e) {
      throw storeError(e, this.path);
    }
  }

  private statements?: {
    existing: Database.Statement<[string, string], { id: number }>;
    insert: Database.Statement<unknown[]>;
    insertSubject: Database.Statement<[number, string, string | null]>;
  };

  private get writes(): NonNullable<AttestationStore["statements"]> {
    this.statements ??= {
      existing: this.db.prepare(
        "SELECT id FROM attestations WHERE payload_sha256 = ? AND keyid = ?",
      ),
      insert: this.db.prepare(
        `INSERT INTO attestations (bundle_sha256, payload_sha256, keyid, bundle, predicate_type, builder_id, derivation, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      insertSubject: this.db.prepare(
        "INSERT OR IGNORE INTO subjects (attestation_id, name, sha256) VALUES (?, ?, ?)",
      ),
    };
    return this.statements;
  }

  /**
   * Store an attestation; the same statement signed by the same key is kept once.
   * Inside `transaction()` it joins that transaction (no savepoint of its own: a
   * failure fails the whole transaction); outside, it is one transaction.
   */
  put(a: NewAttestation): { id: number; inserted: boolean } {
    try {
      return this.db.inTransaction
        ? this.insert(a)
        : this.db.transaction(() => this.insert(a)).immediate();
    } catch (e) {
      throw storeError(e, this.path);
    }
  }

  private insert(a: NewAttestation): { id: number; inserted: boolean } {
    const w = this.writes;
    const payloadSha = sha256(a.payload);
    const existing = w.existing.get(payloadSha, a.keyid);
    if (existing) return { id: existing.id, inserted: false };
    const info = w.insert.run(
      sha256(a.bundle),
      payloadSha,
      a.keyid,
      a.bundle,
      a.predicateType,
      a.builderId ?? null,
      a.derivation ?? null,
      Date.now(),
    );
    const id = Number(info.lastInsertRowid);
    for (const s of a.subjects) w.insertSubject.run(id, s.name, s.sha256 ?? null);
    return { id, inserted: true };
  }

  /** Every subject name that some attestation names, sorted (no bundle is read). */
  subjectNames(): string[] {
    try {
      return (
        this.stmt("SELECT DISTINCT name FROM subjects ORDER BY name").all() as { name: string }[]
      ).map((r) => r.name);
    } catch (e) {
      throw storeError(e, this.path);
    }
  }

  find(q: AttestationQuery): StoredAttestation[] {
    const filters: [unknown, string][] = [
      [q.subjectName, "id IN (SELECT attestation_id FROM subjects WHERE name = ?)"],
      [q.subjectSha256, "id IN (SELECT attestation_id FROM subjects WHERE sha256 = ?)"],
      [q.derivation, "derivation = ?"],
      [q.predicateType, "predicate_type = ?"],
      [q.builderId, "builder_id = ?"],
      [q.since?.getTime(), "created_at >= ?"],
    ];
    const used = filters.filter(([value]) => value !== undefined);
    const where = used.map(([, clause]) => clause);
    const args = used.map(([value]) => value as string | number);
    try {
      const rows = this.stmt(
        `SELECT * FROM attestations ${where.length ? "WHERE " + where.join(" AND ") : ""} ORDER BY id`,
      ).all(...args) as Row[];
      const subjects = this.stmt(
        "SELECT name, sha256 FROM subjects WHERE attestation_id = ? ORDER BY name",
      );
      return rows.map((r) => ({
        id: r.id,
        bundleSha256: r.bundle_sha256,
        bundle: r.bundle,
        keyid: r.keyid,
        predicateType: r.predicate_type,
        builderId: r.builder_id,
        derivation: r.derivation,
        createdAt: new Date(r.created_at),
        subjects: subjects.all(r.id) as { name: string; sha256: string | null }[],
      }));
    } catch (e) {
      throw storeError(e, this.path);
    }
  }

  /**
   * The attestations that name each of these subjects (store id and exact bytes),
   * in id order, as `find({ subjectName })` would give them, in a few queries.
   */
  bundlesNaming(names: readonly string[]): Map<string, { id: number; bundle: Buffer }[]> {
    const out = new Map<string, { id: number; bundle: Buffer }[]>();
    const unique = [...new Set(names)];
    const q = this.stmt(
      `SELECT s.name AS name, a.id AS id, a.bundle AS bundle
       FROM json_each(?) j JOIN subjects s ON s.name = j.value JOIN attestations a ON a.id = s.attestation_id`,
    );
    // Put in id order here, not by ORDER BY: SQLite would sort every row, bundles and
    // all, in a temporary b-tree (4x the query at 10,000 paths); a path's list is short.
    try {
      for (let i = 0; i < unique.length; i += 10_000) {
        const rows = q.all(JSON.stringify(unique.slice(i, i + 10_000))) as {
          name: string;
          id: number;
          bundle: Buffer;
        }[];
        for (const r of rows) {
          const list = out.get(r.name);
          if (list) list.push({ id: r.id, bundle: r.bundle });
          else out.set(r.name, [{ id: r.id, bundle: r.bundle }]);
        }
      }
      for (const list of out.values()) if (list.length > 1) list.sort((a, b) => a.id - b.id);
      return out;
    } catch (e) {
      throw storeError(e, this.path);
    }
  }

  private stmt(sql: string): Database.Statement {
    return prepared(this.db, sql);
  }

  /**
   * A page of attestations made before `before`, after id `afterId`, in id order,
   * with their subjects' names and their bundles' sizes (no bundle is read).
   */
  createdBefore(
    before: Date,
    afterId: number,
    limit: number,
  ): { id: number; predicateType: string; bytes: number; createdAt: Date; subjects: string[] }[] {
    try {
      const rows = this.stmt(
        `SELECT id, predicate_type, length(bundle) AS bytes, created_at FROM attestations
         WHERE id > ? AND created_at < ? ORDER BY id LIMIT ?`,
      ).all(afterId, before.getTime(), limit) as {
        id: number;
        predicate_type: string;
        bytes: number;
        created_at: number;
      }[];
      const subjects = new Map<number, string[]>();
      if (rows.length > 0) {
        const named = this.stmt(
          "SELECT attestation_id AS id, name FROM subjects WHERE attestation_id BETWEEN ? AND ?",
        ).all((rows[0] as { id: number }).id, (rows[rows.length - 1] as { id: number }).id) as {
          id: number;
          name: string;
        }[];
        for (const n of named) subjects.set(n.id, [...(subjects.get(n.id) ?? []), n.name]);
      }
      return rows.map((r) => ({
        id: r.id,
        predicateType: r.predicate_type,
        bytes: r.bytes,
        createdAt: new Date(r.created_at),
        subjects: subjects.get(r.id) ?? [],
      }));
    } catch (e) {
      throw storeError(e, this.path);
    }
  }

  /**
   * Remove attestations in one transaction: their subjects, the journal entries
   * that point at them, and the link from a rebuild run's item (the item and its
   * verdict stay).
   */
  remove(ids: readonly number[]): number {
    if (ids.length === 0) return 0;
    try {
      return this.db
        .transaction(() => {
          const list = JSON.stringify(ids);
          this.stmt(
            "DELETE FROM journal WHERE attestation_id IN (SELECT value FROM json_each(?))",
          ).run(list);
          this.stmt(
            "UPDATE rebuild_items SET attestation_id = NULL WHERE attestation_id IN (SELECT value FROM json_each(?))",
          ).run(list);
          return this.stmt(
            "DELETE FROM attestations WHERE id IN (SELECT value FROM json_each(?))",
          ).run(list).changes;
        })
        .immediate();
    } catch (e) {
      throw storeError(e, this.path);
    }
  }

  /** Give the space of removed rows back to the file system (rewrites the file). */
  vacuum(): void {
    try {
      this.db.exec("VACUUM");
    } catch (e) {
      throw storeError(e, this.path);
    }
  }

  count(): number {
    try {
      return (this.db.prepare("SELECT count(*) AS n FROM attestations").get() as { n: number }).n;
    } catch (e) {
      throw storeError(e, this.path);
    }
  }
}
