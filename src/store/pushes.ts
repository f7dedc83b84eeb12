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

export type PushStatus = "pending" | "pushed" | "failed" | "skipped";

export interface PushRow {
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
  /** Queue a push once; an existing row is left alone. */
  enqueue(path: string, destination: string, now: number): void {
    this.run(() =>
      this.stmt(
        "INSERT OR IGNORE INTO pushes (path, destination, status, queued_at) VALUES (?, ?, 'pending', ?)",
      ).run(path, destination, now),
    );
  }

  due(now: number, limit: number): PushRow[] {
    return this.run(() =>
      (
        this.stmt(
          "SELECT * FROM pushes WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY queued_at, path LIMIT ?",
        ).all(now, limit) as Row[]
      ).map(fromRow),
    );
  }

  /** Whether a push of this path is still owed (pending). */
  owes(path: string): boolean {
    return this.run(
      () =>
        this.stmt("SELECT 1 FROM pushes WHERE path = ? AND status = 'pending'").get(path) !==
        undefined,
    );
  }

  pushed(path: string, destination: string, digest: string, referrer: string | null, now: number) {
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

  list(status?: PushStatus, limit = 100): PushRow[] {
    return this.run(() =>
      (
        this.stmt(
          `SELECT * FROM pushes ${status ? "WHERE status = ?" : ""} ORDER BY queued_at DESC LIMIT ?`,
        ).all(...(status ? [status, limit] : [limit])) as Row[]
      ).map(fromRow),
    );
  }

  counts(): Record<PushStatus, number> {
    return this.run(() => {
      const c: Record<PushStatus, number> = { pending: 0, pushed: 0, failed: 0, skipped: 0 };
      for (const r of this.stmt(
        "SELECT status, count(*) AS n FROM pushes GROUP BY status",
      ).all() as { status: PushStatus; n: number }[])
        c[r.status] = r.n;
      return c;
    });
  }
}
