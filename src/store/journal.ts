import type { ObservationSource, ObservedPath } from "../chains/index.js";
import { StoreTable } from "./table.js";

/** Schema of the chains journal: one row per observed output and builder. */
export const JOURNAL_SCHEMA = `
CREATE TABLE journal (
  path            TEXT NOT NULL,           -- the output store path
  builder_id      TEXT NOT NULL,
  deriver         TEXT,                    -- the .drv that built it, if known
  status          TEXT NOT NULL CHECK (status IN ('pending', 'attested', 'failed', 'substituted', 'vanished')),
  reason          TEXT,                    -- why it is not attested (substituted, vanished, failed)
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL DEFAULT 0, -- ms since the epoch
  last_error      TEXT,
  attestation_id  INTEGER REFERENCES attestations(id),
  source          TEXT NOT NULL,           -- how it was observed: nix-db | hook | reconcile
  registered_at   INTEGER,                 -- Nix's registration time, ms
  observed_at     INTEGER NOT NULL,        -- when provenix saw it, ms
  finished_at     INTEGER,                 -- when it reached attested, failed or vanished, ms
  PRIMARY KEY (path, builder_id)
);
CREATE INDEX journal_due ON journal(status, next_attempt_at);
CREATE INDEX journal_finished_at ON journal(finished_at);
CREATE TABLE daemon_state (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
`;

export type JournalStatus = "pending" | "attested" | "failed" | "substituted" | "vanished";
export type JournalSource = ObservationSource;

export interface JournalRow {
  readonly path: string;
  readonly builderId: string;
  readonly deriver: string | null;
  readonly status: JournalStatus;
  readonly reason: string | null;
  readonly attempts: number;
  readonly nextAttemptAt: number;
  readonly lastError: string | null;
  readonly attestationId: number | null;
  readonly source: JournalSource;
  readonly registeredAt: number | null;
  readonly observedAt: number;
  readonly finishedAt: number | null;
}

export interface JournalStats {
  readonly counts: Record<JournalStatus, number>;
  /** Pending rows whose next attempt is due now. */
  readonly due: number;
  readonly oldestPendingObservedAt: number | null;
  /** Attested in the last `windowMs`. */
  readonly recentAttested: number;
  readonly windowMs: number;
  readonly lastError: { path: string; error: string; at: number | null } | null;
}

interface Row {
  path: string;
  builder_id: string;
  deriver: string | null;
  status: JournalStatus;
  reason: string | null;
  attempts: number;
  next_attempt_at: number;
  last_error: string | null;
  attestation_id: number | null;
  source: JournalSource;
  registered_at: number | null;
  observed_at: number;
  finished_at: number | null;
}

function fromRow(r: Row): JournalRow {
  return {
    path: r.path,
    builderId: r.builder_id,
    deriver: r.deriver,
    status: r.status,
    reason: r.reason,
    attempts: r.attempts,
    nextAttemptAt: r.next_attempt_at,
    lastError: r.last_error,
    attestationId: r.attestation_id,
    source: r.source,
    registeredAt: r.registered_at,
    observedAt: r.observed_at,
    finishedAt: r.finished_at,
  };
}

/**
 * The durable record of what the daemon observed and what became of it. Every
 * method is one statement or runs inside the caller's transaction
 * (AttestationStore.transaction), so a crash leaves each row in a state it had.
 */
export class Journal extends StoreTable {
  /**
   * Record newly observed outputs. A row that exists is left alone, except a
   * vanished one, which a rebuild makes pending again.
   */
  record(builderId: string, paths: readonly ObservedPath[], now: number): number {
    return this.run(() => {
      const upsert = this.stmt(
        `INSERT INTO journal (path, builder_id, deriver, status, reason, source, registered_at, observed_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (path, builder_id) DO UPDATE SET
           status = excluded.status, reason = excluded.reason, deriver = excluded.deriver,
           attempts = 0, next_attempt_at = 0, last_error = NULL, finished_at = NULL,
           source = excluded.source, registered_at = excluded.registered_at,
           observed_at = excluded.observed_at
         WHERE journal.status = 'vanished'`,
      );
      let added = 0;
      for (const p of paths) {
        const info = upsert.run(
          p.path,
          builderId,
          p.deriver ?? null,
          p.status,
          p.reason ?? null,
          p.source,
          p.registeredAt ?? null,
          now,
        );
        added += info.changes;
      }
      return added;
    });
  }

  /** Pending rows whose next attempt is due, oldest observation first. */
  due(builderId: string, now: number, limit: number): JournalRow[] {
    return this.run(() =>
      (
        this.stmt(
          `SELECT * FROM journal WHERE status = 'pending' AND builder_id = ? AND next_attempt_at <= ?
             ORDER BY observed_at, path LIMIT ?`,
        ).all(builderId, now, limit) as Row[]
      ).map(fromRow),
    );
  }

  /** Rows in a status (or all), most recently observed first. */
  list(builderId: string, status: JournalStatus | undefined, limit: number): JournalRow[] {
    return this.run(() =>
      (
        this.stmt(
          `SELECT * FROM journal WHERE builder_id = ? ${status ? "AND status = ?" : ""}
             ORDER BY observed_at DESC, path LIMIT ?`,
        ).all(...[builderId, ...(status ? [status] : []), limit]) as Row[]
      ).map(fromRow),
    );
  }

  get(builderId: string, path: string): JournalRow | undefined {
    return this.run(() => {
      const r = this.stmt("SELECT * FROM journal WHERE path = ? AND builder_id = ?").get(
        path,
        builderId,
      ) as Row | undefined;
      return r && fromRow(r);
    });
  }

  /** Mark pending rows attested by one attestation. Returns how many changed. */
  markAttested(builderId: string, paths: readonly string[], attestationId: number, now: number) {
    return this.run(() => {
      const stmt = this.stmt(
        `UPDATE journal SET status = 'attested', attestation_id = ?, finished_at = ?, reason = NULL
         WHERE path = ? AND builder_id = ? AND status IN ('pending', 'failed')`,
      );
      let n = 0;
      for (const p of paths) n += stmt.run(attestationId, now, p, builderId).changes;
      return n;
    });
  }

  /**
   * Record a failed attempt: retried at `nextAttemptAt`, or `failed` for good
   * when `terminal` (the error cannot go away, or attempts are used up).
   */
  markFailure(
    builderId: string,
    path: string,
    error: string,
    now: number,
    next: { terminal: boolean; nextAttemptAt: number },
  ): void {
    this.run(() =>
      this.stmt(
        `UPDATE journal SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?,
             status = CASE WHEN ? THEN 'failed' ELSE status END,
             reason = CASE WHEN ? THEN ? ELSE reason END,
             finished_at = CASE WHEN ? THEN ? ELSE finished_at END
           WHERE path = ? AND builder_id = ? AND status = 'pending'`,
      ).run(
        error,
        next.nextAttemptAt,
        next.terminal ? 1 : 0,
        next.terminal ? 1 : 0,
        error,
        next.terminal ? 1 : 0,
        now,
        path,
        builderId,
      ),
    );
  }

  markVanished(builderId: string, path: string, reason: string, now: number): void {
    this.run(() =>
      this.stmt(
        `UPDATE journal SET status = 'vanished', reason = ?, finished_at = ?
           WHERE path = ? AND builder_id = ? AND status IN ('pending', 'failed')`,
      ).run(reason, now, path, builderId),
    );
  }

  /** Put every failed row back in the queue, due now. Returns how many. */
  retryFailed(builderId: string): number {
    return this.run(
      () =>
        this.stmt(
          `UPDATE journal SET status = 'pending', attempts = 0, next_attempt_at = 0, finished_at = NULL
             WHERE builder_id = ? AND status = 'failed'`,
        ).run(builderId).changes,
    );
  }

  stats(builderId: string, now: number, windowMs = 60_000): JournalStats {
    return this.run(() => {
      const counts: Record<JournalStatus, number> = {
        pending: 0,
        attested: 0,
        failed: 0,
        substituted: 0,
        vanished: 0,
      };
      for (const r of this.stmt(
        "SELECT status, count(*) AS n FROM journal WHERE builder_id = ? GROUP BY status",
      ).all(builderId) as { status: JournalStatus; n: number }[])
        counts[r.status] = r.n;
      const one = <T>(sql: string, ...args: unknown[]) =>
        this.stmt(sql).get(...args) as T | undefined;
      const due = one<{ n: number }>(
        "SELECT count(*) AS n FROM journal WHERE builder_id = ? AND status = 'pending' AND next_attempt_at <= ?",
        builderId,
        now,
      );
      const oldest = one<{ t: number | null }>(
        "SELECT min(observed_at) AS t FROM journal WHERE builder_id = ? AND status = 'pending'",
        builderId,
      );
      const recent = one<{ n: number }>(
        "SELECT count(*) AS n FROM journal WHERE builder_id = ? AND status = 'attested' AND finished_at >= ?",
        builderId,
        now - windowMs,
      );
      const last = one<{ path: string; last_error: string; finished_at: number | null }>(
        `SELECT path, last_error, finished_at FROM journal WHERE builder_id = ? AND last_error IS NOT NULL
         ORDER BY coalesce(finished_at, next_attempt_at) DESC LIMIT 1`,
        builderId,
      );
      return {
        counts,
        due: due?.n ?? 0,
        oldestPendingObservedAt: oldest?.t ?? null,
        recentAttested: recent?.n ?? 0,
        windowMs,
        lastError: last ? { path: last.path, error: last.last_error, at: last.finished_at } : null,
      };
    });
  }

  getState(key: string): string | undefined {
    return this.run(
      () =>
        (
          this.stmt("SELECT value FROM daemon_state WHERE key = ?").get(key) as
            { value: string } | undefined
        )?.value,
    );
  }

  setState(key: string, value: string): void {
    this.run(() =>
      this.stmt(
        "INSERT INTO daemon_state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      ).run(key, value),
    );
  }
}
