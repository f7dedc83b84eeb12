import Database from "better-sqlite3";
import {
  DEFAULT_STORE_DIR,
  NixError,
  parseNixHash,
  type Derivation,
  type NixStore,
  type PathInfo,
  type RegisteredPath,
} from "../nix/index.js";
import { readDerivationFile } from "./nix-cli.js";

export const DEFAULT_NIX_DB = "/nix/var/nix/db/db.sqlite";

interface ValidPathRow {
  id: number;
  path: string;
  hash: string;
  registrationTime: number;
  deriver: string | null;
  narSize: number | null;
  ultimate: number | null;
  sigs: string | null;
  ca: string | null;
  /** Determinate Nix 3.16+ only: the path's provenance record, JSON. */
  provenance?: string | null;
}

/** A provenance record as stored; one that is not a JSON object is not taken. */
function provenanceOf(text: string | null | undefined): { provenance?: Record<string, unknown> } {
  if (!text) return {};
  try {
    const v: unknown = JSON.parse(text);
    return v !== null && typeof v === "object" && !Array.isArray(v)
      ? { provenance: v as Record<string, unknown> }
      : {};
  } catch {
    return {};
  }
}

/**
 * A read-only NixStore over Nix's own SQLite database (schema of libstore/schema.sql).
 * It never writes: Nix owns this file.
 */
export class NixDbStore implements NixStore {
  private readonly db: Database.Database;
  private readonly outputs: Database.Statement<[string], { drv: string; id: string; path: string }>;

  constructor(
    dbPath: string = DEFAULT_NIX_DB,
    readonly storeDir: string = DEFAULT_STORE_DIR,
  ) {
    try {
      this.db = new Database(dbPath, { readonly: true, fileMustExist: true, timeout: 10_000 });
      // The realised outputs of a JSON list of derivations: those of their outputs
      // that are valid.
      this.outputs = this.db.prepare(
        `SELECT d.path AS drv, o.id AS id, o.path AS path FROM DerivationOutputs o
         JOIN ValidPaths d ON d.id = o.drv JOIN ValidPaths v ON v.path = o.path
         WHERE d.path IN (SELECT value FROM json_each(?))`,
      );
    } catch (cause) {
      throw new NixError(
        "NIX_DB_UNREADABLE",
        `cannot read the Nix database ${dbPath}: ${String((cause as Error).message)}`,
        {
          cause,
        },
      );
    }
  }

  close(): void {
    this.db.close();
  }

  /** Paths registered after ValidPaths id `afterId`, in registration order. */
  registeredSince(afterId: number, limit: number): RegisteredPath[] {
    const rows = this.db
      .prepare(
        "SELECT id, path, deriver, registrationTime, ultimate, sigs, ca FROM ValidPaths WHERE id > ? ORDER BY id LIMIT ?",
      )
      .all(afterId, limit) as ValidPathRow[];
    return rows.map((r) => ({
      id: r.id,
      path: r.path,
      deriver: r.deriver,
      registrationTime: r.registrationTime,
      ultimate: r.ultimate === 1,
      signatures: r.sigs ? r.sigs.split(" ").filter((s) => s !== "") : [],
      ca: r.ca,
    }));
  }

  /** The highest ValidPaths id so far (0 for an empty store). */
  lastId(): number {
    return (
      (this.db.prepare("SELECT max(id) AS id FROM ValidPaths").get() as { id: number | null }).id ??
      0
    );
  }

  private info(row: ValidPathRow, references: string[]): PathInfo {
    return {
      path: row.path,
      narHash: parseNixHash(row.hash, "sha256").hex,
      narSize: row.narSize ?? 0,
      references: references.sort(),
      ...(row.deriver ? { deriver: row.deriver } : {}),
      registrationTime: row.registrationTime,
      ultimate: row.ultimate === 1,
      signatures: row.sigs ? row.sigs.split(" ").filter((s) => s !== "") : [],
      ...(row.ca ? { ca: row.ca } : {}),
      ...provenanceOf(row.provenance),
    };
  }

  private batched?: {
    rows: Database.Statement<[string], ValidPathRow>;
    refs: Database.Statement<[string], { referrer: number; path: string }>;
  };

  /** Path infos, 10,000 paths to a query (a query per path costs more than the rows). */
  pathInfos(paths: readonly string[]): Promise<Map<string, PathInfo>> {
    const q = (this.batched ??= {
      rows: this.db.prepare(
        "SELECT * FROM ValidPaths WHERE path IN (SELECT value FROM json_each(?))",
      ),
      refs: this.db.prepare(
        `SELECT r.referrer AS referrer, v.path AS path FROM Refs r JOIN ValidPaths v ON v.id = r.reference
         WHERE r.referrer IN (SELECT value FROM json_each(?))`,
      ),
    });
    const found = new Map<string, PathInfo>();
    this.db.transaction(() => {
      for (let i = 0; i < paths.length; i += 10_000) {
        const rows = q.rows.all(JSON.stringify(paths.slice(i, i + 10_000)));
        const refs = new Map<number, string[]>(rows.map((r) => [r.id, []]));
        for (const r of q.refs.all(JSON.stringify(rows.map((r) => r.id)))) {
          refs.get(r.referrer)?.push(r.path);
        }
        for (const row of rows) found.set(row.path, this.info(row, refs.get(row.id) ?? []));
      }
    })();
    // In the order asked, as callers print them.
    const out = new Map<string, PathInfo>();
    for (const p of paths) {
      const info = found.get(p);
      if (info) out.set(p, info);
    }
    return Promise.resolve(out);
  }

  closure(paths: readonly string[]): Promise<string[]> {
    if (paths.length === 0) return Promise.resolve([]);
    const rows = this.db
      .prepare(
        `WITH RECURSIVE c(id) AS (
           SELECT id FROM ValidPaths WHERE path IN (SELECT value FROM json_each(?))
           UNION SELECT r.reference FROM Refs r JOIN c ON r.referrer = c.id)
         SELECT v.path AS path FROM ValidPaths v JOIN c ON v.id = c.id ORDER BY v.path`,
      )
      .all(JSON.stringify(paths)) as { path: string }[];
    return Promise.resolve(rows.map((r) => r.path));
  }

  async derivationOutputs(drvPath: string): Promise<Map<string, string>> {
    return (await this.derivationOutputsOf([drvPath])).get(drvPath) ?? new Map<string, string>();
  }

  narHashes(paths: readonly string[]): Promise<Map<string, string>> {
    const q = (this.hashOf ??= this.db.prepare("SELECT hash FROM ValidPaths WHERE path = ?"));
    const out = new Map<string, string>();
    this.db.transaction(() => {
      for (const p of paths) {
        const row = q.get(p) as { hash: string } | undefined;
        if (row) out.set(p, parseNixHash(row.hash, "sha256").hex);
      }
    })();
    return Promise.resolve(out);
  }

  private hashOf: Database.Statement | undefined;

  /** Realised outputs of many derivations, 10,000 to a query. */
  derivationOutputsOf(drvPaths: readonly string[]): Promise<Map<string, Map<string, string>>> {
    const out = new Map<string, Map<string, string>>(drvPaths.map((d) => [d, new Map()]));
    this.db.transaction(() => {
      for (let i = 0; i < drvPaths.length; i += 10_000) {
        for (const r of this.outputs.all(JSON.stringify(drvPaths.slice(i, i + 10_000)))) {
          out.get(r.drv)?.set(r.id, r.path);
        }
      }
    })();
    return Promise.resolve(out);
  }

  readDerivation(drvPath: string): Promise<Derivation> {
    return readDerivationFile(drvPath, this.storeDir);
  }
}
