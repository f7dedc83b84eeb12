import { hostname } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { StoreError } from "../store/index.js";
import type { Chains, ChainsEvent } from "./chains.js";

export interface LoopOptions {
  /** "db": poll the Nix database; "hook": drain the post-build-hook spool. */
  readonly mode: "db" | "hook";
  /** How often to look for new registrations / spool records, ms. */
  readonly pollMs: number;
  /** How often to reconcile with the Nix database (always done at start), ms. */
  readonly reconcileMs: number;
  /** Where a first run starts: registrations from now on, or every locally built path. */
  readonly from: "now" | "start";
  /** Stop once nothing is due (one pass), instead of running until signalled. */
  readonly once: boolean;
  readonly emit: (e: ChainsEvent) => void;
}

/** Store errors that can go away by themselves (space freed, lock released, remounted). */
export const RETRYABLE: ReadonlySet<string> = new Set(["FULL", "IO", "UNWRITABLE", "BUSY"]);

const HEARTBEAT_MS = 5_000;
const MAX_ERROR_BACKOFF_MS = 60_000;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Refuse to run beside another live daemon on the same store. */
export function claimDaemon(chains: Chains, mode: string, now = Date.now()): void {
  const s = chains.daemonState();
  if (
    s &&
    s.stoppedAt === undefined &&
    s.pid !== process.pid &&
    s.hostname === hostname() &&
    alive(s.pid)
  ) {
    throw new StoreError(
      "IN_USE",
      `another provenix daemon (pid ${s.pid}) is running on this attestation store`,
    );
  }
  chains.setDaemonState({
    pid: process.pid,
    hostname: hostname(),
    mode,
    startedAt: now,
    heartbeatAt: now,
  });
}

/**
 * The daemon's main loop. Errors from the attestation store (full disk,
 * read-only directory, locked) are logged and retried with backoff: the
 * journal and the checkpoint only move when a transaction commits, so nothing
 * observed is lost while the store cannot be written.
 */
export async function runDaemon(chains: Chains, o: LoopOptions, signal: AbortSignal) {
  const startedAt = Date.now();
  let lastReconcile = 0;
  let lastBeat = 0;
  let errorBackoff = 0;
  let started = false;
  while (!signal.aborted) {
    try {
      if (!started) {
        claimDaemon(chains, o.mode, startedAt);
        const checkpoint = chains.initCheckpoint(o.from);
        o.emit({ event: "started", level: "info", mode: o.mode, checkpoint, pid: process.pid });
        started = true;
      }
      const now = Date.now();
      if (now - lastReconcile >= o.reconcileMs) {
        chains.reconcile();
        lastReconcile = now;
      } else if (o.mode === "db") chains.observe("nix-db");
      if (o.mode === "hook") await chains.ingestSpool();
      for (;;) {
        const r = await chains.work();
        if (r.attested + r.retrying + r.failed + r.vanished === 0 || signal.aborted) break;
        // Keep observing between batches, so a backlog does not hide new builds.
        if (o.mode === "db") chains.observe("nix-db");
        else await chains.ingestSpool();
      }
      while (!signal.aborted && (await chains.push()) > 0) {
        // Attestations come first: observe and attest between image pushes.
        if (o.mode === "db") chains.observe("nix-db");
        await chains.work();
      }
      if (Date.now() - lastBeat >= HEARTBEAT_MS) {
        chains.setDaemonState({
          pid: process.pid,
          hostname: hostname(),
          mode: o.mode,
          startedAt,
          heartbeatAt: Date.now(),
        });
        lastBeat = Date.now();
      }
      if (errorBackoff > 0) o.emit({ event: "recovered", level: "info" });
      errorBackoff = 0;
      if (o.once) break;
      await sleep(o.pollMs, undefined, { signal }).catch(() => undefined);
    } catch (e) {
      if (!(e instanceof StoreError) || !RETRYABLE.has(e.code)) throw e;
      errorBackoff = Math.min(MAX_ERROR_BACKOFF_MS, Math.max(1_000, errorBackoff * 2));
      o.emit({
        event: "store-error",
        level: "error",
        error: e.message,
        retryInMs: errorBackoff,
      });
      if (o.once) throw e;
      await sleep(errorBackoff, undefined, { signal }).catch(() => undefined);
    }
  }
  if (started) {
    try {
      chains.setDaemonState({
        pid: process.pid,
        hostname: hostname(),
        mode: o.mode,
        startedAt,
        heartbeatAt: Date.now(),
        stoppedAt: Date.now(),
      });
    } catch (e) {
      o.emit({ event: "store-error", level: "error", error: (e as Error).message });
    }
  }
  o.emit({ event: "stopped", level: "info" });
}
