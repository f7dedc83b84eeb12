import { createHash } from "node:crypto";
import type { ClosureItem, ItemStatus } from "../repro/index.js";
import { StoreTable } from "./table.js";

/** Schema 3: reports linked from attestations by digest, and resumable closure rebuilds. */
export const REBUILD_SCHEMA = `
CREATE TABLE reports (
  sha256     TEXT PRIMARY KEY,            -- sha256 of content
  media_type TEXT NOT NULL,
  content    BLOB NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE rebuild_runs (
  id          INTEGER PRIMARY KEY,
  root        TEXT NOT NULL,              -- the .drv whose closure is rebuilt
  closure     TEXT NOT NULL CHECK (closure IN ('build', 'runtime')),
  builder_id  TEXT NOT NULL,
  started_at  INTEGER NOT NULL,
  finished_at INTEGER
);
CREATE INDEX rebuild_runs_root ON rebuild_runs(root, closure, builder_id);
CREATE TABLE rebuild_items (
  run_id         INTEGER NOT NULL REFERENCES rebuild_runs(id) ON DELETE CASCADE,
  drv            TEXT NOT NULL,
  position       INTEGER NOT NULL,         -- build order: dependencies first
  status         TEXT NOT NULL CHECK (status IN ('pending', 'reproducible', 'unreproducible', 'failed', 'skipped')),
  detail         TEXT,
  attestation_id INTEGER REFERENCES attestations(id),
  finished_at    INTEGER,
  PRIMARY KEY (run_id, drv)
);
`;

export interface Report {
  readonly sha256: string;
  readonly mediaType: string;
  readonly content: Buffer;
}

export interface RebuildRun {
  readonly id: number;
  readonly root: string;
  readonly closure: "build" | "runtime";
  readonly builderId: string;
  readonly startedAt: number;
  readonly finishedAt: number | null;
  /** True when this run was found unfinished and is being resumed. */
  readonly resumed: boolean;
}

interface RunRow {
  id: number;
  root: string;
  closure: "build" | "runtime";
  builder_id: string;
  started_at: number;
  finished_at: number | null;
}

interface ItemRow {
  drv: string;
  status: ItemStatus;
  detail: string | null;
  attestation_id: number | null;
}

/** Reports and closure-rebuild runs, in the attestation store's file. */
export class Rebuilds extends StoreTable {
  /** Keep a report; content-addressed, so storing it twice keeps one copy. */
  putReport(mediaType: string, content: Buffer, now = Date.now()): string {
    const sha256 = createHash("sha256").update(content).digest("hex");
    this.run(() =>
      this.stmt(
        "INSERT OR IGNORE INTO reports (sha256, media_type, content, created_at) VALUES (?, ?, ?, ?)",
      ).run(sha256, mediaType, content, now),
    );
    return sha256;
  }

  getReport(sha256: string): Report | undefined {
    return this.run(() => {
      const r = this.stmt("SELECT sha256, media_type, content FROM reports WHERE sha256 = ?").get(
        sha256,
      ) as { sha256: string; media_type: string; content: Buffer } | undefined;
      return r && { sha256: r.sha256, mediaType: r.media_type, content: r.content };
    });
  }

  /**
   * The unfinished run for this root, closure and builder, to resume; or a new
   * one over `drvs` (in build order). Call inside a transaction.
   */
  openRun(
    root: string,
    closure: "build" | "runtime",
    builderId: string,
    drvs: readonly string[],
    restart: boolean,
    now = Date.now(),
  ): RebuildRun {
    return this.run(() => {
      const open = this.stmt(
        `SELECT * FROM rebuild_runs WHERE root = ? AND closure = ? AND builder_id = ? AND finished_at IS NULL
           ORDER BY id DESC LIMIT 1`,
      ).get(root, closure, builderId) as RunRow | undefined;
      if (open && !restart) return { ...fromRun(open), resumed: true };
      if (open) {
        this.stmt("UPDATE rebuild_runs SET finished_at = ? WHERE id = ?").run(now, open.id);
      }
      const id = Number(
        this.stmt(
          "INSERT INTO rebuild_runs (root, closure, builder_id, started_at) VALUES (?, ?, ?, ?)",
        ).run(root, closure, builderId, now).lastInsertRowid,
      );
      const add = this.stmt(
        "INSERT INTO rebuild_items (run_id, drv, position, status) VALUES (?, ?, ?, 'pending')",
      );
      drvs.forEach((d, i) => add.run(id, d, i));
      return { id, root, closure, builderId, startedAt: now, finishedAt: null, resumed: false };
    });
  }

  items(runId: number): ClosureItem[] {
    return this.run(() =>
      (
        this.stmt(
          "SELECT drv, status, detail, attestation_id FROM rebuild_items WHERE run_id = ? ORDER BY position",
        ).all(runId) as ItemRow[]
      ).map((r) => ({
        drvPath: r.drv,
        status: r.status,
        ...(r.detail !== null ? { detail: r.detail } : {}),
        ...(r.attestation_id !== null ? { attestationId: r.attestation_id } : {}),
      })),
    );
  }

  setItem(runId: number, item: ClosureItem, now = Date.now()): void {
    this.run(() =>
      this.stmt(
        `UPDATE rebuild_items SET status = ?, detail = ?, attestation_id = ?, finished_at = ?
           WHERE run_id = ? AND drv = ?`,
      ).run(item.status, item.detail ?? null, item.attestationId ?? null, now, runId, item.drvPath),
    );
  }

  finishRun(runId: number, now = Date.now()): void {
    this.run(() =>
      this.stmt("UPDATE rebuild_runs SET finished_at = ? WHERE id = ?").run(now, runId),
    );
  }
}

function fromRun(r: RunRow): Omit<RebuildRun, "resumed"> {
  return {
    id: r.id,
    root: r.root,
    closure: r.closure,
    builderId: r.builder_id,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
  };
}
