import { StoreTable } from "./table.js";

/** Schema 4: the daemon's queue of image outputs to push to a registry. */
export const PUSH_SCHEMA = `
CREATE TABLE pushes (
  path            TEXT NOT NULL,           -- the image output (store path)
  destination     TEXT NOT NULL,           -- registry/repository:tag
  status          TEXT NOT NULL CHECK (status IN ('pending', 'pushed', 'failed', 'skipped')),
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL DEFAULT 0,
  last_error      TEXT,
  digest          TEXT,                    -- the pushed manifest's digest
  referrer        TEXT,                    -- the attached provenance's referrer manifest
  queued_at       INTEGER NOT NULL,
  finished_at     INTEGER,
  PRIMARY KEY (path, destination)
);
CREATE INDEX pushes_due ON pushes(status, next_attempt_at);
`;

/**
 * Schema 5: the same queue carries publications of attestations to binary caches
 * (kind 'cache', destination the cache URL) beside image pushes (kind 'image').
 */
export const PUSH_KIND_SCHEMA = `
ALTER TABLE pushes ADD COLUMN kind TEXT NOT NULL DEFAULT 'image' CHECK (kind IN ('image', 'cache'));
CREATE INDEX pushes_kind_due ON pushes(kind, status, next_attempt_at);
`;

/** What a queued row delivers: an image to a registry, or attestations to a binary cache. */
export type PushKind = "image" | "cache";

export type PushStatus = "pending" | "pushed" | "failed" | "skipped";

export interface PushRow {
  readonly kind: PushKind;
  readonly path: string;
  readonly destination: string;
  readonly status: PushStatus;
  readonly attempts: number;
  readonly nextAttemptAt: number;
  readonly lastError: string | null;
  readonly digest: string | null;
  readonly referrer: string | null;
}

interface Row {
  kind: PushKind;
  path: string;
  destination: string;
  status: PushStatus;
  attempts: number;
  next_attempt_at: number;
  last_error: string | null;
  digest: string | null;
  referrer: string | null;
}

const fromRow = (r: Row): PushRow => ({
  kind: r.kind,
  path: r.path,
  destination: r.destination,
  status: r.status,
  attempts: r.attempts,
  nextAttemptAt: r.next_attempt_at,
  lastError: r.last_error,
  digest: r.digest,
  referrer: r.referrer,
});

/** Durable push queue: every method is one statement, or runs in the caller's transaction. */
export class Pushes extends StoreTable {
  /**
   * Queue a push once; an existing row is left alone, except that a finished
   * publication to a cache is queued again (the path has new attestations).
   */
  enqueue(path: string, destination: string, now: number, kind: PushKind = "image"): void {
    this.run(() =>
      kind === "image"
        ? this.stmt(
            "INSERT OR IGNORE INTO pushes (kind, path, destination, status, queued_at) VALUES ('image', ?, ?, 'pending', ?)",
          ).run(path, destination, now)
        : this.stmt(
            `INSERT INTO pushes (kind, path, destination, status, queued_at) VALUES ('cache', ?, ?, 'pending', ?)
               ON CONFLICT (path, destination) DO UPDATE SET status = 'pending', attempts = 0,
                 next_attempt_at = 0, queued_at = excluded.queued_at, finished_at = NULL
               WHERE status <> 'pending'`,
          ).run(path, destination, now),
    );
  }

  due(kind: PushKind, now: number, limit: number): PushRow[] {
    return this.run(() =>
      (
        this.stmt(
          "SELECT * FROM pushes WHERE kind = ? AND status = 'pending' AND next_attempt_at <= ? ORDER BY queued_at, path LIMIT ?",
        ).all(kind, now, limit) as Row[]
      ).map(fromRow),
    );
  }

  /** Whether a push of this path of this kind is still owed (pending). */
  owes(path: string, kind: PushKind = "image"): boolean {
    return this.run(
      () =>
        this.stmt("SELECT 1 FROM pushes WHERE path = ? AND kind = ? AND status = 'pending'").get(
          path,
          kind,
        ) !== undefined,
    );
  }

  pushed(
    path: string,
    destination: string,
    digest: string | null,
    referrer: string | null,
    now: number,
  ) {
    this.run(() =>
      this.stmt(
        `UPDATE pushes SET status = 'pushed', digest = ?, referrer = ?, finished_at = ?, last_error = NULL,
           attempts = attempts + 1 WHERE path = ? AND destination = ?`,
      ).run(digest, referrer, now, path, destination),
    );
  }

  failure(
    path: string,
    destination: string,
    error: string,
    next: { terminal: boolean; nextAttemptAt: number },
    skipped: boolean,
    now: number,
  ) {
    this.run(() =>
      this.stmt(
        `UPDATE pushes SET status = ?, last_error = ?, attempts = attempts + 1, next_attempt_at = ?,
           finished_at = ? WHERE path = ? AND destination = ?`,
      ).run(
        skipped ? "skipped" : next.terminal ? "failed" : "pending",
        error,
        next.nextAttemptAt,
        next.terminal || skipped ? now : null,
        path,
        destination,
      ),
    );
  }

  list(kind: PushKind, limit = 100): PushRow[] {
    return this.run(() =>
      (
        this.stmt("SELECT * FROM pushes WHERE kind = ? ORDER BY queued_at DESC LIMIT ?").all(
          kind,
          limit,
        ) as Row[]
      ).map(fromRow),
    );
  }

  counts(kind: PushKind): Record<PushStatus, number> {
    return this.run(() => {
      const c: Record<PushStatus, number> = { pending: 0, pushed: 0, failed: 0, skipped: 0 };
      for (const r of this.stmt(
        "SELECT status, count(*) AS n FROM pushes WHERE kind = ? GROUP BY status",
      ).all(kind) as { status: PushStatus; n: number }[])
        c[r.status] = r.n;
      return c;
    });
  }
}
