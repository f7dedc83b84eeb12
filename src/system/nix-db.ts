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
  private readonly byPath: Database.Statement<[string], ValidPathRow>;
  private readonly refs: Database.Statement<[number], { path: string }>;
  private readonly outputs: Database.Statement<[string], { id: string; path: string }>;

  constructor(
    dbPath: string = DEFAULT_NIX_DB,
    readonly storeDir: string = DEFAULT_STORE_DIR,
  ) {
    try {
      this.db = new Database(dbPath, { readonly: true, fileMustExist: true, timeout: 10_000 });
      this.byPath = this.db.prepare("SELECT * FROM ValidPaths WHERE path = ?");
      this.refs = this.db.prepare(
        "SELECT v.path AS path FROM Refs r JOIN ValidPaths v ON v.id = r.reference WHERE r.referrer = ?",
      );
      // The realised outputs: those of the derivation's outputs that are valid.
      this.outputs = this.db.prepare(
        "SELECT o.id AS id, o.path AS path FROM DerivationOutputs o JOIN ValidPaths d ON d.id = o.drv JOIN ValidPaths v ON v.path = o.path WHERE d.path = ?",
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

  private info(row: ValidPathRow): PathInfo {
    return {
      path: row.path,
      narHash: parseNixHash(row.hash, "sha256").hex,
      narSize: row.narSize ?? 0,
      references: this.refs
        .all(row.id)
        .map((r) => r.path)
        .sort(),
      ...(row.deriver ? { deriver: row.deriver } : {}),
      registrationTime: row.registrationTime,
      ultimate: row.ultimate === 1,
      signatures: row.sigs ? row.sigs.split(" ").filter((s) => s !== "") : [],
      ...(row.ca ? { ca: row.ca } : {}),
      ...provenanceOf(row.provenance),
    };
  }

  pathInfos(paths: readonly string[]): Promise<Map<string, PathInfo>> {
    const out = new Map<string, PathInfo>();
    this.db.transaction(() => {
      for (const p of paths) {
        const row = this.byPath.get(p);
        if (row) out.set(p, this.info(row));
      }
    })();
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

  derivationOutputs(drvPath: string): Promise<Map<string, string>> {
    return Promise.resolve(this.realisedOutputs(drvPath));
  }

  private realisedOutputs(drvPath: string): Map<string, string> {
    const out = new Map<string, string>();
    for (const { id, path } of this.outputs.all(drvPath)) out.set(id, path);
    return out;
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

  derivationOutputsOf(drvPaths: readonly string[]): Promise<Map<string, Map<string, string>>> {
    const out = new Map<string, Map<string, string>>();
    this.db.transaction(() => {
      for (const d of drvPaths) out.set(d, this.realisedOutputs(d));
    })();
    return Promise.resolve(out);
  }

  readDerivation(drvPath: string): Promise<Derivation> {
    return readDerivationFile(drvPath, this.storeDir);
  }
}
