import { setPriority } from "node:os";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { withoutBuildLevel } from "../assess/index.js";
import {
  Chains,
  readCheckpoint,
  readDaemonState,
  type ChainsEvent,
  type Pusher,
} from "../app/chains.js";
import { runDaemon, RETRYABLE } from "../app/daemon-loop.js";
import { DEFAULT_RETRY } from "../chains/index.js";
import type { ClosureKind } from "../sbom/index.js";
import { AttestationStore, StoreError, type JournalStatus } from "../store/index.js";
import { defaultGcRootDir, GcRoots } from "../system/gc-roots.js";
import { defaultNixConf, installHook, uninstallHook } from "../system/hook-files.js";
import { DEFAULT_NIX_DB, NixDbStore } from "../system/nix-db.js";
import { SpoolDir } from "../system/spool.js";
import { VERSION } from "../version.js";
import { claimLevel } from "./assess-command.js";
import type { Command, Invocation } from "./command.js";
import type { Context } from "./context.js";
import { CliError, EXIT } from "./errors.js";
import type { SbomFormat } from "../app/sbom.js";
import { CachePublisher } from "../app/cache-publisher.js";
import { ImagePusher } from "../app/image-pusher.js";
import { cacheFrom } from "./cache-command.js";
import { closurePackages, scan } from "../app/vulns.js";
import { VulnDb } from "../system/vuln-db.js";
import { pathToFileURL } from "node:url";
import { vulnDbPath } from "./config.js";
import { SIGNING_HELP, SIGNING_OPTIONS } from "./sigstore-options.js";
import { parseReference } from "../oci/index.js";
import { REGISTRY_HELP, REGISTRY_OPTIONS, registryClient } from "./oci-command.js";

function intOption(inv: Invocation, name: string, fallback: number, min = 0): number {
  const v = inv.values[name];
  if (typeof v !== "string") return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min)
    throw new CliError("USAGE", `--${name} takes a whole number >= ${min}, not '${v}'`);
  return n;
}

function choice<T extends string>(inv: Invocation, name: string, allowed: readonly T[], d: T): T {
  const v = (inv.values[name] as string | undefined) ?? d;
  if (!(allowed as readonly string[]).includes(v))
    throw new CliError("USAGE", `--${name} takes ${allowed.join(" or ")}, not '${v}'`);
  return v as T;
}

/** The spool directory and hook script live next to the attestation store by default. */
function spoolDir(ctx: Context, inv: Invocation): string {
  return typeof inv.values.spool === "string"
    ? inv.values.spool
    : join(dirname(ctx.config.store), "spool");
}

function openNixDb(): NixDbStore {
  return new NixDbStore(process.env.NIX_DB ?? DEFAULT_NIX_DB);
}

/** JSON lines on stderr: one object per event, with a timestamp. */
function logger(inv: Invocation, quiet: boolean): (e: ChainsEvent) => void {
  return (e) => {
    if (quiet && e.level === "info" && e.event !== "started" && e.event !== "stopped") return;
    inv.io.err(JSON.stringify({ ts: new Date().toISOString(), ...e }) + "\n");
  };
}

async function openStoreRetrying(
  path: string,
  once: boolean,
  emit: (e: ChainsEvent) => void,
  signal: AbortSignal,
): Promise<AttestationStore | undefined> {
  let backoff = 1_000;
  let failed = false;
  for (;;) {
    try {
      const store = AttestationStore.open(path);
      if (failed) emit({ event: "recovered", level: "info" });
      return store;
    } catch (e) {
      failed = true;
      if (once || !(e instanceof StoreError) || !RETRYABLE.has(e.code)) throw e;
      emit({ event: "store-error", level: "error", error: e.message, retryInMs: backoff });
      await sleep(backoff, undefined, { signal }).catch(() => undefined);
      if (signal.aborted) return undefined;
      backoff = Math.min(60_000, backoff * 2);
    }
  }
}

export const daemonCommand: Command = {
  usage: "Usage: provenix daemon [options]",
  help: `Watches what Nix registers and attests every output built here through the
same code as 'provenix attest', the way Tekton Chains watches TaskRuns.

Observation adds nothing to builds: by default the daemon polls the Nix
database (read-only) for newly registered paths; those Nix marks as built here
('ultimate') are queued, substituted ones are journaled with their binary-cache
signatures and not given provenance. With --mode hook it drains the spool of
'provenix hook install' instead, and reconciles with the database periodically.

Every output goes through a durable journal in the attestation store:
pending -> attested | failed, with retries (exponential backoff) and the last
error; an attestation is written once per output and builder, even across
crashes. A GC root keeps each output until it is attested. Logs are JSON lines
on stderr. SIGTERM or SIGINT finishes the current batch and exits 0.

Options:
  --key FILE          signing key (as for attest); env PROVENIX_KEY
  --builder-id URI    runDetails.builder.id; env PROVENIX_BUILDER_ID
  --mode MODE         db (default): poll the Nix database; hook: drain the
                      post-build-hook spool
  --poll MS           how often to look for new builds (default 250)
  --reconcile SEC     how often to reconcile with the Nix database (default 300;
                      also at start)
  --from WHERE        first run only: now (default) attests builds from now on;
                      start attests every locally built output in the store
  --once              one pass (catch up, attest what is due), then exit
  --batch N           outputs attested per transaction (default 64)
  --max-attempts N    attempts before an output is marked failed (default ${DEFAULT_RETRY.maxAttempts})
  --retry-failed      put failed outputs back in the queue first
  --sbom FORMAT       also sign an SBOM (cyclonedx or spdx) with each provenance
  --sbom-closure KIND runtime (default), build or both
  --vulns             also sign a scan of each derivation's outputs' runtime
                      closure for known vulnerabilities (in-toto vulns v0.2;
                      'provenix vulns', docs/vulns.md), from the local database
  --vulns-db FILE     that database (default $XDG_DATA_HOME/provenix/vulns.db)
  --gc-roots DIR      GC roots of outputs not yet attested
                      (default ${defaultGcRootDir()})
  --no-gc-roots       do not keep outputs from garbage collection
  --spool DIR         the hook's spool (default: spool/ next to the store)
  --nice N            scheduling priority, 0-19 (default 10): builds come first
  --claim-level N     write builder.id with slsa-build-level=N, only if
                      'provenix assess' gives this machine level N or higher
                      (checked at start)
  --quiet             log only warnings and errors

Images (chains mode for containers):
  --push-to REG/PREFIX  push every attested image output (a docker-archive
                      .tar/.tar.gz or an OCI layout) to REG/PREFIX/<name>:<store
                      hash>, with its provenance attached as an OCI referrer;
                      queued in the same transaction as the attestation and
                      retried with backoff until it lands (its GC root stays)
  --push-max-attempts N  attempts before a push or a publication is marked
                      failed (default 12)
${REGISTRY_HELP}

Binary caches (provenance travels with the binaries, docs/binary-cache.md):
  --publish-to URL    publish the attestations of every attested output to this
                      cache (file://, http:// or https://) once the cache has the
                      output's narinfo; queued in the same transaction as the
                      attestation, retried with backoff while the path is not
                      there yet or the cache fails
  --cache-timeout S   seconds to wait for each answer of the cache (default 30)

${SIGNING_HELP}
                      (the daemon signs keylessly with one certificate per
                      signature, and reads --identity-token again each time)`,
  options: {
    key: { type: "string" },
    "builder-id": { type: "string" },
    mode: { type: "string" },
    poll: { type: "string" },
    reconcile: { type: "string" },
    from: { type: "string" },
    once: { type: "boolean" },
    batch: { type: "string" },
    "max-attempts": { type: "string" },
    "retry-failed": { type: "boolean" },
    sbom: { type: "string", multiple: true },
    "sbom-closure": { type: "string" },
    vulns: { type: "boolean" },
    "vulns-db": { type: "string" },
    "gc-roots": { type: "string" },
    "no-gc-roots": { type: "boolean" },
    spool: { type: "string" },
    nice: { type: "string" },
    quiet: { type: "boolean" },
    "claim-level": { type: "string" },
    "push-to": { type: "string" },
    "push-max-attempts": { type: "string" },
    ...SIGNING_OPTIONS,
    "publish-to": { type: "string" },
    "cache-timeout": { type: "string" },
    ...REGISTRY_OPTIONS,
  },
  keyIsSigningKey: true,
  builderIdIsOwn: true,
  async run(ctx, inv) {
    const mode = choice(inv, "mode", ["db", "hook"] as const, "db");
    const from = choice(inv, "from", ["now", "start"] as const, "now");
    const pollMs = intOption(inv, "poll", 250, 10);
    const reconcileMs = intOption(inv, "reconcile", 300, 1) * 1000;
    const batchSize = intOption(inv, "batch", 64, 1);
    const maxAttempts = intOption(inv, "max-attempts", DEFAULT_RETRY.maxAttempts, 1);
    const nice = intOption(inv, "nice", 10, 0);
    const sbomClosure: ClosureKind = choice(
      inv,
      "sbom-closure",
      ["runtime", "build", "both"],
      "runtime",
    );
    const sboms = ((inv.values.sbom as string[] | undefined) ?? []).map(
      (
        f,
      ): {
        format: SbomFormat;
        closure: ClosureKind;
      } => {
        if (f !== "cyclonedx" && f !== "spdx")
          throw new CliError("USAGE", `unknown SBOM format '${f}': use cyclonedx or spdx`);
        return { format: f, closure: sbomClosure };
      },
    );
    const once = inv.values.once === true;
    const emit = logger(inv, inv.values.quiet === true);
    try {
      setPriority(0, Math.min(19, nice));
    } catch {
      // lowering priority is best effort
    }

    const signer = await ctx.bundleSigner(inv, inv.values.key !== undefined);
    await claimLevel(ctx, inv.values["claim-level"], { daemonRunning: true });
    const nix = openNixDb();
    const controller = new AbortController();
    const stop = () => controller.abort();
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);
    try {
      const store = await openStoreRetrying(ctx.config.store, once, emit, controller.signal);
      if (!store) return EXIT.OK;
      try {
        let roots: GcRoots | undefined;
        if (inv.values["no-gc-roots"] !== true) {
          roots = new GcRoots(
            typeof inv.values["gc-roots"] === "string"
              ? inv.values["gc-roots"]
              : defaultGcRootDir(),
          );
          try {
            roots.ensure();
          } catch (e) {
            throw new CliError(
              "INPUT",
              `cannot create the GC root directory ${roots.dir}: ${(e as Error).message} (use --gc-roots DIR or --no-gc-roots)`,
            );
          }
        }
        let spool: SpoolDir | undefined;
        if (mode === "hook") {
          spool = new SpoolDir(spoolDir(ctx, inv));
          spool.ensure();
        }
        const vulnDb =
          inv.values.vulns === true ? VulnDb.open(vulnDbPath(inv.values["vulns-db"])) : undefined;
        const pushRetry = {
          ...DEFAULT_RETRY,
          maxAttempts: intOption(inv, "push-max-attempts", DEFAULT_RETRY.maxAttempts, 1),
        };
        const pushers: Pusher[] = [];
        if (typeof inv.values["push-to"] === "string") {
          const prefix = parseReference(inv.values["push-to"]);
          if (prefix.tag !== undefined || prefix.digest !== undefined) {
            throw new CliError("USAGE", "--push-to takes registry/prefix, without a tag or digest");
          }
          pushers.push(
            new ImagePusher(
              {
                nix,
                host: ctx.host,
                store,
                signer,
                client: registryClient(prefix, inv, 1),
                emit,
                ...(roots ? { release: (p: string) => roots.release(p) } : {}),
              },
              {
                prefix,
                builderId: ctx.config.builderId,
                provenixVersion: VERSION,
                retry: pushRetry,
              },
            ),
          );
        }
        if (typeof inv.values["publish-to"] === "string") {
          const cache = cacheFrom(inv, inv.values["publish-to"]);
          pushers.push(new CachePublisher({ store, cache, emit }, pushRetry));
        }
        const chains = new Chains(
          {
            nix,
            feed: nix,
            host: ctx.host,
            signer,
            store,
            ...(roots ? { roots } : {}),
            ...(spool ? { spool } : {}),
            pushers,
            ...(vulnDb
              ? {
                  vulns: {
                    scan: async (outputs: readonly string[], drv: string) =>
                      scan(
                        vulnDb,
                        await closurePackages(
                          nix,
                          { outputs: [...outputs], derivations: [drv] },
                          "runtime",
                        ),
                      ),
                    dbUri: pathToFileURL(vulnDb.path).href,
                    dbUpdated: () => vulnDb.updatedAt(),
                  },
                }
              : {}),
            emit,
          },
          {
            builderId: ctx.config.builderId,
            provenixVersion: VERSION,
            retry: { ...DEFAULT_RETRY, maxAttempts },
            batchSize,
            sboms,
          },
        );
        if (inv.values["retry-failed"] === true) {
          const n = store.journal.retryFailed(withoutBuildLevel(ctx.config.builderId));
          emit({ event: "retry-failed", level: "info", requeued: n });
        }
        try {
          await runDaemon(
            chains,
            { mode, pollMs, reconcileMs, from, once, emit },
            controller.signal,
          );
        } finally {
          vulnDb?.close();
        }
        return EXIT.OK;
      } finally {
        store.close();
      }
    } finally {
      process.off("SIGTERM", stop);
      process.off("SIGINT", stop);
      nix.close();
    }
  },
};

function ago(ms: number | null | undefined, now: number): string {
  if (ms === null || ms === undefined) return "never";
  const s = Math.max(0, Math.round((now - ms) / 1000));
  return s < 120
    ? `${s}s ago`
    : s < 7200
      ? `${Math.round(s / 60)}m ago`
      : `${Math.round(s / 3600)}h ago`;
}

const STATUSES: readonly JournalStatus[] = [
  "pending",
  "attested",
  "failed",
  "substituted",
  "vanished",
];

export const statusCommand: Command = {
  usage: "Usage: provenix status [options]",
  help: `Reads the journal the daemon keeps in the attestation store (it need not be
running) and reports: whether a daemon is running, the Nix database checkpoint
and how many registrations are not yet observed, the queue (pending outputs,
how many are due, the oldest), the attestation rate over the last minute, the
counts per status and the last error.

Options:
  --builder-id URI    whose journal (default: this machine's builder id)
  --list STATUS       also list outputs in a status: pending, attested, failed,
                      substituted or vanished, with their reasons
  --limit N           at most N listed (default 50)
  --json              print it as JSON`,
  options: {
    "builder-id": { type: "string" },
    list: { type: "string" },
    limit: { type: "string" },
  },
  builderIdIsOwn: true,
  run(ctx, inv) {
    const now = Date.now();
    const builderId = ctx.config.builderId;
    const list =
      inv.values.list === undefined ? undefined : choice(inv, "list", STATUSES, "pending");
    const limit = intOption(inv, "limit", 50, 1);
    const store = ctx.store;
    const stats = store.journal.stats(builderId, now);
    const daemon = readDaemonState(store.journal);
    const running =
      daemon !== undefined && daemon.stoppedAt === undefined && now - daemon.heartbeatAt < 30_000;
    const checkpoint = readCheckpoint(store.journal);
    let nixLastId: number | undefined;
    try {
      const nix = openNixDb();
      nixLastId = nix.lastId();
      nix.close();
    } catch {
      // status still reports the journal when the Nix database cannot be read
    }
    const rate = stats.recentAttested / (stats.windowMs / 1000);
    const rows = list ? store.journal.list(builderId, list, limit) : undefined;
    const pushes = store.pushes.counts("image");
    const pushRows = store.pushes.list("image", 20);
    const publications = store.pushes.counts("cache");
    const publicationRows = store.pushes.list("cache", 20);
    if (inv.json) {
      inv.io.out(
        JSON.stringify(
          {
            builderId,
            store: store.path,
            daemon: daemon ? { ...daemon, running } : null,
            checkpoint: {
              nixDbId: checkpoint ?? null,
              nixDbLastId: nixLastId ?? null,
              unobserved:
                checkpoint !== undefined && nixLastId !== undefined
                  ? Math.max(0, nixLastId - checkpoint)
                  : null,
            },
            queue: {
              pending: stats.counts.pending,
              due: stats.due,
              oldestPendingObservedAt: stats.oldestPendingObservedAt,
            },
            ratePerSecond: Number(rate.toFixed(3)),
            counts: stats.counts,
            lastError: stats.lastError,
            pushes: { counts: pushes, recent: pushRows },
            publications: { counts: publications, recent: publicationRows },
            ...(rows ? { list: rows } : {}),
          },
          null,
          2,
        ) + "\n",
      );
      return EXIT.OK;
    }
    const o = (k: string, v: string) => inv.io.out(`${(k + ":").padEnd(13)}${v}\n`);
    o("builder", builderId);
    o(
      "daemon",
      daemon === undefined
        ? "never ran on this store"
        : running
          ? `running (pid ${daemon.pid}, ${daemon.mode} mode, heartbeat ${ago(daemon.heartbeatAt, now)})`
          : `not running (last seen ${ago(daemon.stoppedAt ?? daemon.heartbeatAt, now)})`,
    );
    o(
      "checkpoint",
      checkpoint === undefined
        ? "none yet"
        : `Nix db path id ${checkpoint}` +
            (nixLastId !== undefined
              ? ` (${Math.max(0, nixLastId - checkpoint)} registrations not yet observed)`
              : ""),
    );
    o(
      "queue",
      `${stats.counts.pending} pending (${stats.due} due)` +
        (stats.oldestPendingObservedAt !== null
          ? `, oldest observed ${ago(stats.oldestPendingObservedAt, now)}`
          : ""),
    );
    o("rate", `${rate.toFixed(1)} attestations/s over the last ${stats.windowMs / 1000}s`);
    for (const s of STATUSES.slice(1)) o(s, String(stats.counts[s]));
    o("last error", stats.lastError ? `${stats.lastError.path}: ${stats.lastError.error}` : "none");
    if (pushRows.length > 0) {
      o(
        "image pushes",
        `${pushes.pending} pending, ${pushes.pushed} pushed, ${pushes.failed} failed, ${pushes.skipped} skipped`,
      );
      const lastFailed = pushRows.find((r) => r.lastError !== null && r.status !== "pushed");
      if (lastFailed) o("push error", `${lastFailed.destination}: ${lastFailed.lastError ?? ""}`);
    }
    if (publicationRows.length > 0) {
      o(
        "publications",
        `${publications.pending} pending, ${publications.pushed} published, ${publications.failed} failed, ${publications.skipped} skipped`,
      );
      const lastFailed = publicationRows.find((r) => r.lastError !== null && r.status !== "pushed");
      if (lastFailed) o("publish err", `${lastFailed.destination}: ${lastFailed.lastError ?? ""}`);
    }
    for (const r of rows ?? []) {
      inv.io.out(
        `${r.status.padEnd(11)} ${r.path}` +
          (r.attestationId !== null ? `  attestation ${r.attestationId}` : "") +
          ((r.reason ?? r.lastError) ? `  ${r.reason ?? r.lastError}` : "") +
          (r.status === "pending" && r.attempts > 0
            ? `  (attempt ${r.attempts}, next ${new Date(r.nextAttemptAt).toISOString()})`
            : "") +
          "\n",
      );
    }
    return EXIT.OK;
  },
};

export const hookCommand: Command = {
  usage: "Usage: provenix hook install|uninstall [options]",
  help: `For setups that want Nix to announce each build: 'install' writes a POSIX sh
post-build-hook that only spools DRV_PATH (and OUT_PATHS when Nix sets it) to a
new file, using shell built-ins (no fork+exec) and always exiting 0 (a failing
hook stops Nix building); it adds 'post-build-hook = <hook>' to nix.conf,
keeping a backup of the original as nix.conf.provenix-backup. Both are
idempotent, and install refuses to replace another post-build-hook. Run the
daemon with --mode hook to drain the spool. A multi-user Nix reads nix.conf at
start: restart nix-daemon afterwards.

Options:
  --hook FILE         the hook script (default: post-build-hook next to the store)
  --spool DIR         where it spools (default: spool/ next to the store)
  --nix-conf FILE     the nix.conf to edit (default $NIX_CONF_DIR/nix.conf, else
                      /etc/nix/nix.conf)
  --json              print what changed as JSON`,
  options: {
    hook: { type: "string" },
    spool: { type: "string" },
    "nix-conf": { type: "string" },
  },
  run(ctx, inv) {
    const action = inv.positionals[0];
    if (action !== "install" && action !== "uninstall")
      throw new CliError("USAGE", "hook takes 'install' or 'uninstall' (see --help)");
    const paths = {
      hook:
        typeof inv.values.hook === "string"
          ? inv.values.hook
          : join(dirname(ctx.config.store), "post-build-hook"),
      spool: spoolDir(ctx, inv),
      nixConf:
        typeof inv.values["nix-conf"] === "string" ? inv.values["nix-conf"] : defaultNixConf(),
    };
    const change = action === "install" ? installHook(paths) : uninstallHook(paths);
    if (inv.json) inv.io.out(JSON.stringify({ action, ...paths, ...change }, null, 2) + "\n");
    else if (action === "install") {
      inv.io.out(
        `hook ${paths.hook}: ${change.scriptWritten ? "written" : "unchanged"}\n` +
          `spool ${paths.spool}\n` +
          `nix.conf ${paths.nixConf}: ${change.nixConfChanged ? `post-build-hook added${change.backup ? ` (backup ${change.backup})` : ""}` : "already set"}\n`,
      );
    } else {
      inv.io.out(
        `hook ${paths.hook}: ${change.scriptWritten ? "removed" : "not installed"}\n` +
          `nix.conf ${paths.nixConf}: ${change.nixConfChanged ? "post-build-hook removed" : "had no provenix hook"}\n`,
      );
    }
    return EXIT.OK;
  },
};
