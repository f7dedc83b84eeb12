import { withoutBuildLevel } from "../assess/index.js";
import { DerivationCache, SLSA_PROVENANCE_V1, type BuildHost } from "../attest/index.js";
import {
  classifyRegistered,
  nextAttempt,
  type ObservationSource,
  type ObservedPath,
  type RetryPolicy,
  type SpoolRecord,
} from "../chains/index.js";
import { NixError, type NixStore, type RegisteredPath } from "../nix/index.js";
import type { ClosureKind } from "../sbom/index.js";
import type { BundleSigner } from "../sign/index.js";
import { vulnsStatement } from "../vulns/index.js";
import type { ScanResult } from "./vulns.js";
import type { AttestationStore, Journal, JournalRow } from "../store/index.js";
import { provenanceFor, signStatement, type SignedStatement } from "./attest.js";
import { makeSbom, sbomStatement, type SbomFormat } from "./sbom.js";

/** New registrations in the Nix store, in order (the Nix database's ValidPaths). */
export interface RegistrationFeed {
  registeredSince(afterId: number, limit: number): RegisteredPath[];
  lastId(): number;
}

/** Keeps outputs from garbage collection until they are attested. */
export interface RootKeeper {
  protect(path: string): void;
  release(path: string): void;
  list(): string[];
}

/** Records left by the post-build-hook. */
export interface SpoolFeed {
  take(now: number): {
    entries: { file: string; record: SpoolRecord; finishedAt: number }[];
    rejected: { file: string; error: string }[];
  };
  done(file: string): void;
}

/** One structured log event. Libraries never print: the CLI renders these. */
export interface ChainsEvent {
  readonly event: string;
  readonly level: "info" | "warn" | "error";
  readonly [field: string]: unknown;
}

/**
 * Delivers attested outputs somewhere, through a durable queue: images to a
 * registry (app/image-pusher.ts), attestations to a binary cache
 * (app/cache-publisher.ts).
 */
export interface Pusher {
  /** Queue what it delivers among these paths (call inside the attestation's transaction); returns the paths to report as queued. */
  enqueue(paths: readonly string[]): string[];
  /** Whether a push of this path is still owed (its GC root stays until then). */
  owes(path: string): boolean;
  /** Push what is due; returns how many were tried. */
  work(): Promise<number>;
}

export interface ChainsDeps {
  readonly nix: NixStore;
  readonly feed: RegistrationFeed;
  readonly host: BuildHost;
  readonly signer: BundleSigner;
  readonly store: AttestationStore;
  readonly roots?: RootKeeper;
  readonly spool?: SpoolFeed;
  readonly pushers?: readonly Pusher[];
  /** With `daemon --vulns`: scans an output's runtime closure for known vulnerabilities. */
  readonly vulns?: VulnScanner;
  readonly emit: (e: ChainsEvent) => void;
  readonly now?: () => number;
}

/** A scan of outputs' runtime closure against the local vulnerability database. */
export interface VulnScanner {
  scan(outputs: readonly string[], drv: string): Promise<ScanResult>;
  readonly dbUri: string;
  dbUpdated(): Date | undefined;
}

export interface ChainsOptions {
  readonly builderId: string;
  readonly provenixVersion: string;
  readonly retry: RetryPolicy;
  /** Outputs attested per transaction. */
  readonly batchSize: number;
  /** SBOMs signed alongside each provenance. */
  readonly sboms: readonly { format: SbomFormat; closure: ClosureKind }[];
}

export interface WorkResult {
  readonly attested: number;
  readonly retrying: number;
  readonly failed: number;
  readonly vanished: number;
}

const CHECKPOINT = "nix-db-checkpoint";
const DAEMON = "daemon";
const SCAN_CHUNK = 5_000;
/** Statements of a batch being written and signed at once (Chains.work). */
const SIGNING_IN_FLIGHT = 8;

/** Nix errors that another attempt cannot fix. */
const PERMANENT: ReadonlySet<string> = new Set([
  "INVALID_STORE_PATH",
  "NOT_IN_STORE",
  "INVALID_BASE32",
  "INVALID_HASH",
  "MALFORMED_DERIVATION",
  "UNSUPPORTED_DERIVATION",
  "NOT_VALID",
]);

function oneLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0] ?? "error";
}

/** The daemon's state, kept in the store so `provenix status` can read it. */
export interface DaemonState {
  readonly pid: number;
  readonly hostname: string;
  readonly mode: string;
  readonly startedAt: number;
  readonly heartbeatAt: number;
  readonly stoppedAt?: number;
}

/** The ValidPaths id up to which registrations are journaled. */
export function readCheckpoint(journal: Journal): number | undefined {
  const v = journal.getState(CHECKPOINT);
  return v === undefined ? undefined : Number(v);
}

/** What the daemon last said about itself. */
export function readDaemonState(journal: Journal): DaemonState | undefined {
  const v = journal.getState(DAEMON);
  return v === undefined ? undefined : (JSON.parse(v) as DaemonState);
}

/**
 * Chains mode: observe what Nix registers, journal it, and attest every output
 * built here through the same code as `provenix attest`. Each step commits in
 * one transaction, so a crash at any point loses nothing and repeats nothing.
 */
export class Chains {
  private readonly now: () => number;
  /** The journal's key: the builder's identity, without a level claim. */
  private readonly journalId: string;

  constructor(
    private readonly deps: ChainsDeps,
    private readonly o: ChainsOptions,
  ) {
    this.now = deps.now ?? Date.now;
    this.journalId = withoutBuildLevel(o.builderId);
  }

  private get journal() {
    return this.deps.store.journal;
  }

  /** The ValidPaths id up to which registrations are journaled. */
  checkpoint(): number | undefined {
    return readCheckpoint(this.journal);
  }

  /** On the first run: start from what Nix registers from now on, or from the beginning. */
  initCheckpoint(from: "now" | "start"): number {
    const existing = this.checkpoint();
    if (existing !== undefined) return existing;
    const cp = from === "now" ? this.deps.feed.lastId() : 0;
    this.journal.setState(CHECKPOINT, String(cp));
    return cp;
  }

  private protect(paths: readonly ObservedPath[]): void {
    if (!this.deps.roots) return;
    for (const p of paths) {
      if (p.status !== "pending") continue;
      try {
        this.deps.roots.protect(p.path);
      } catch (e) {
        this.deps.emit({ event: "gc-root-failed", level: "warn", path: p.path, error: oneLine(e) });
      }
    }
  }

  /** Only what the journal does not hold yet (or holds as vanished). */
  private fresh(paths: readonly ObservedPath[]): ObservedPath[] {
    return paths.filter((p) => {
      const row = this.journal.get(this.journalId, p.path);
      return row === undefined || row.status === "vanished";
    });
  }

  /** Journal everything Nix registered since the checkpoint. Returns how many outputs were new. */
  observe(source: ObservationSource = "nix-db"): number {
    let cp = this.checkpoint() ?? this.initCheckpoint("now");
    let added = 0;
    for (;;) {
      const rows = this.deps.feed.registeredSince(cp, SCAN_CHUNK);
      const last = rows.at(-1);
      if (!last) break;
      const observed = this.fresh(
        rows
          .map((r) => classifyRegistered(r, source))
          .filter((p): p is ObservedPath => p !== undefined),
      );
      this.protect(observed);
      const now = this.now();
      const store = this.deps.store;
      added += store.transaction(() => {
        const n = this.journal.record(this.journalId, observed, now);
        this.journal.setState(CHECKPOINT, String(last.id));
        return n;
      });
      for (const p of observed) {
        this.deps.emit({
          event: p.status === "pending" ? "observed" : "substituted",
          level: "info",
          path: p.path,
          source,
          ...(p.deriver ? { deriver: p.deriver } : {}),
        });
      }
      cp = last.id;
      if (rows.length < SCAN_CHUNK) break;
    }
    return added;
  }

  /** Journal the builds the post-build-hook spooled, then drop their spool files. */
  async ingestSpool(): Promise<number> {
    const spool = this.deps.spool;
    if (!spool) return 0;
    const { entries, rejected } = spool.take(this.now());
    for (const r of rejected)
      this.deps.emit({ event: "spool-rejected", level: "warn", file: r.file, error: r.error });
    if (entries.length === 0) return 0;
    const observed: ObservedPath[] = [];
    for (const { record, finishedAt } of entries) {
      let outputs = record.outPaths;
      if (outputs.length === 0) {
        // Nix 2.8 passes an empty OUT_PATHS: the derivation knows its outputs.
        try {
          outputs = [...(await this.deps.nix.derivationOutputs(record.drvPath)).values()];
        } catch (e) {
          this.deps.emit({
            event: "spool-unresolved",
            level: "warn",
            deriver: record.drvPath,
            error: oneLine(e),
          });
        }
      }
      for (const path of outputs)
        observed.push({
          path,
          deriver: record.drvPath,
          status: "pending",
          source: "hook",
          registeredAt: finishedAt,
        });
    }
    const fresh = this.fresh(observed);
    this.protect(fresh);
    const now = this.now();
    const added = this.deps.store.transaction(() =>
      this.journal.record(this.journalId, fresh, now),
    );
    for (const e of entries) spool.done(e.file);
    for (const p of fresh)
      this.deps.emit({ event: "observed", level: "info", path: p.path, source: "hook" });
    return added;
  }

  /** Attest one batch of due outputs. */
  async work(): Promise<WorkResult> {
    const { store } = this.deps;
    const builderId = this.o.builderId;
    const journalId = this.journalId;
    const rows = this.journal.due(journalId, this.now(), this.o.batchSize);
    if (rows.length === 0) return { attested: 0, retrying: 0, failed: 0, vanished: 0 };
    const infos = await this.deps.nix.pathInfos(rows.map((r) => r.path));
    const vanished = rows.filter((r) => !infos.has(r.path));
    const byDrv = new Map<string, JournalRow[]>();
    const failures: { row: JournalRow; error: unknown }[] = [];
    for (const r of rows) {
      if (!infos.has(r.path)) continue;
      const drv = r.deriver ?? infos.get(r.path)?.deriver;
      if (!drv) {
        failures.push({ row: r, error: new NixError("NOT_VALID", `${r.path} has no deriver`) });
        continue;
      }
      byDrv.set(drv, [...(byDrv.get(drv) ?? []), r]);
    }
    const derivations = new DerivationCache(this.deps.nix);
    try {
      // Read the batch's derivations ahead, in a few batched queries.
      await derivations.prefetch([...byDrv.keys()]);
    } catch {
      // a derivation that cannot be read fails on its own below, with its reason
    }
    const done: { rows: JournalRow[]; signed: SignedStatement[]; existing?: number }[] = [];
    const toSign: { drv: string; rows: JournalRow[] }[] = [];
    for (const [drv, group] of byDrv) {
      const existing = group.map(
        (r) =>
          store.find({ subjectName: r.path, builderId, predicateType: SLSA_PROVENANCE_V1 })[0]?.id,
      );
      if (existing.every((id) => id !== undefined)) {
        done.push({ rows: group, signed: [], existing: existing[0] });
      } else toSign.push({ drv, rows: group });
    }
    // A few at once: each signature is made on the thread pool while the next
    // statement is written (not more: each may also make SBOMs and scans).
    const signed: ({ value: SignedStatement[] } | { error: unknown })[] = [];
    let next = 0;
    const worker = async () => {
      while (next < toSign.length) {
        const i = next++;
        const { drv } = toSign[i] as (typeof toSign)[number];
        try {
          signed[i] = { value: await this.sign(drv, derivations) };
        } catch (error) {
          signed[i] = { error };
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(SIGNING_IN_FLIGHT, toSign.length) }, worker));
    for (const [i, { rows }] of toSign.entries()) {
      const s = signed[i] as (typeof signed)[number];
      if ("value" in s) done.push({ rows, signed: s.value });
      else for (const row of rows) failures.push({ row, error: s.error });
    }
    const now = this.now();
    const result = { attested: 0, retrying: 0, failed: 0, vanished: vanished.length };
    const events: ChainsEvent[] = [];
    const toPush: string[] = [];
    store.transaction(() => {
      for (const r of vanished) {
        this.journal.markVanished(
          builderId,
          r.path,
          "garbage-collected before it was attested",
          now,
        );
        events.push({ event: "vanished", level: "warn", path: r.path });
      }
      for (const d of done) {
        const ids = d.signed.map((s) => store.put(s.record).id);
        const id = d.existing ?? ids[0];
        const subjects = new Set(d.signed[0]?.subjects.map((s) => s.name) ?? []);
        for (const row of d.rows) {
          if (id === undefined || (d.signed.length > 0 && !subjects.has(row.path))) {
            failures.push({
              row,
              error: new NixError("NOT_VALID", `${row.path} is not an output of ${row.deriver}`),
            });
            continue;
          }
          this.journal.markAttested(journalId, [row.path], id, now);
          toPush.push(row.path);
          result.attested++;
          events.push({
            event: "attested",
            level: "info",
            path: row.path,
            attestation: id,
            ...(d.existing !== undefined ? { existing: true } : {}),
            ...(row.registeredAt !== null ? { latencyMs: now - row.registeredAt } : {}),
          });
        }
      }
      for (const { row, error } of failures) {
        const permanent = error instanceof NixError && PERMANENT.has(error.code);
        const next = nextAttempt(row.attempts + 1, now, this.o.retry, permanent);
        const message = oneLine(error);
        this.journal.markFailure(journalId, row.path, message, now, next);
        if (next.terminal) result.failed++;
        else result.retrying++;
        events.push({
          event: next.terminal ? "failed" : "retry",
          level: next.terminal ? "error" : "warn",
          path: row.path,
          attempts: row.attempts + 1,
          error: message,
          ...(next.terminal ? {} : { nextAttemptAt: new Date(next.nextAttemptAt).toISOString() }),
        });
      }
      // Images to push are queued with their attestation: a crash loses neither.
      for (const pusher of this.deps.pushers ?? []) {
        for (const path of pusher.enqueue(toPush)) {
          events.push({ event: "push-queued", level: "info", path });
        }
      }
    });
    // Only once the journal says so: attested and vanished outputs need no root.
    for (const e of events) {
      if (
        (e.event === "attested" || e.event === "vanished") &&
        typeof e.path === "string" &&
        !this.owes(e.path)
      )
        this.deps.roots?.release(e.path);
      this.deps.emit(e);
    }
    return result;
  }

  private async sign(drv: string, derivations: DerivationCache): Promise<SignedStatement[]> {
    const ctx = {
      nix: this.deps.nix,
      host: this.deps.host,
      builderId: this.o.builderId,
      provenixVersion: this.o.provenixVersion,
      derivations,
    };
    const statement = await provenanceFor(ctx, drv);
    const signed = [await signStatement({ ...ctx, signer: this.deps.signer }, statement, drv)];
    const subjects = signed[0]?.subjects ?? [];
    for (const s of this.o.sboms) {
      const document = await makeSbom(
        this.deps.nix,
        { outputs: subjects.map((x) => x.name), derivations: [drv] },
        { format: s.format, closure: s.closure, toolVersion: this.o.provenixVersion },
      );
      signed.push(
        await signStatement(
          { ...ctx, signer: this.deps.signer },
          sbomStatement(subjects, s.format, document),
          drv,
        ),
      );
    }
    const scanner = this.deps.vulns;
    if (scanner) {
      const started = new Date();
      const result = await scanner.scan(
        subjects.map((x) => x.name),
        drv,
      );
      const statement = vulnsStatement(subjects, result, {
        version: this.o.provenixVersion,
        dbUri: scanner.dbUri,
        dbUpdated: scanner.dbUpdated() ?? new Date(0),
        started,
        finished: new Date(),
      });
      signed.push(await signStatement({ ...ctx, signer: this.deps.signer }, statement, drv));
    }
    return signed;
  }

  /** Drop GC roots of outputs that no longer need them (attested, or no longer journaled as owed). */
  releaseSettledRoots(): number {
    const roots = this.deps.roots;
    if (!roots) return 0;
    let n = 0;
    for (const path of roots.list()) {
      const row = this.journal.get(this.journalId, path);
      if (row && (row.status === "pending" || row.status === "failed")) continue;
      if (this.owes(path)) continue;
      roots.release(path);
      n++;
    }
    return n;
  }

  /** Whether a pusher still needs this output in the store (its GC root stays). */
  private owes(path: string): boolean {
    return (this.deps.pushers ?? []).some((p) => p.owes(path));
  }

  /** Deliver what is due: images (with their provenance attached), attestations to caches. */
  async push(): Promise<number> {
    let n = 0;
    for (const p of this.deps.pushers ?? []) n += await p.work();
    return n;
  }

  /** Catch up with everything registered since the checkpoint, and tidy roots. */
  reconcile(): number {
    const added = this.observe("reconcile");
    const released = this.releaseSettledRoots();
    this.deps.emit({
      event: "reconciled",
      level: "info",
      observed: added,
      rootsReleased: released,
      checkpoint: this.checkpoint(),
    });
    return added;
  }

  daemonState(): DaemonState | undefined {
    return readDaemonState(this.journal);
  }

  setDaemonState(s: DaemonState): void {
    this.journal.setState(DAEMON, JSON.stringify(s));
  }
}
