// `provenix daemon` against real Nix builds, a real SQLite journal and real GC.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import Database from "better-sqlite3";
import { Chains } from "../../src/app/chains.js";
import { DEFAULT_RETRY } from "../../src/chains/index.js";
import { generateKeyPair, keyBundleSigner, parseSecretKey } from "../../src/sign/index.js";
import { AttestationStore } from "../../src/store/index.js";
import { LocalBuildHost } from "../../src/system/build-host.js";
import { GcRoots } from "../../src/system/gc-roots.js";
import { NixDbStore } from "../../src/system/nix-db.js";
import { cliHome, isOneLineError, provenix } from "../helpers/cli.js";
import { BUILDER, Daemon, journalStats, waitAttested } from "../helpers/daemon.js";
import { BUILDS, GRAPH, build, run, tempDir, useTestNix } from "../helpers/nix.js";

useTestNix();
const execFileAsync = promisify(execFile);

/** A provenix home with a signing key and its store path. */
function home(): { env: NodeJS.ProcessEnv; store: string } {
  const env = cliHome();
  assert.equal(provenix(["keygen"], env).code, 0);
  return { env, store: join(env.XDG_DATA_HOME!, "provenix", "attestations.db") };
}

/** Build a fresh graph of n+1 derivations without blocking the event loop. */
async function buildGraph(n: number): Promise<string> {
  const seed = String(Math.floor(Math.random() * 1e9));
  const { stdout } = await execFileAsync(
    "nix-build",
    [GRAPH, "--arg", "n", String(n), "--arg", "seed", seed, "--no-out-link", "-j", "4"],
    { maxBuffer: 1 << 26 },
  );
  return stdout.trim();
}

function closureOf(path: string): string[] {
  return run("nix-store", ["-qR", path]).split("\n").filter(Boolean).sort();
}

/** Every provenance attestation's subjects, by subject; each must appear exactly once. */
function attestedSubjects(storePath: string): Map<string, number> {
  const store = AttestationStore.open(storePath);
  try {
    const counts = new Map<string, number>();
    for (const a of store.find({ predicateType: "https://slsa.dev/provenance/v1" }))
      for (const s of a.subjects) counts.set(s.name, (counts.get(s.name) ?? 0) + 1);
    return counts;
  } finally {
    store.close();
  }
}

function gcRootDir(): string {
  return join("/nix/var/nix/gcroots", `provenix-test-${process.pid}-${Date.now()}`);
}

test("a burst of 2,000 builds: every output attested once, GC roots released", async (t) => {
  const { env, store } = home();
  const roots = gcRootDir();
  const d = Daemon.start(t, ["--gc-roots", roots, "--quiet"], env);
  await d.waitFor((e) => e.event === "started", "start");
  const top = await buildGraph(2000);
  const expected = closureOf(top);
  assert.equal(expected.length, 2001);
  const stats = await waitAttested(store, expected.length, 300_000);
  assert.equal(stats.counts.attested, 2001);
  assert.equal(stats.counts.failed + stats.counts.vanished, 0);
  const subjects = attestedSubjects(store);
  assert.deepEqual([...subjects.keys()].sort(), expected, "exactly the built outputs");
  assert.ok(
    [...subjects.values()].every((n) => n === 1),
    "none attested twice",
  );
  assert.deepEqual(readdirSync(roots), [], "roots released once attested");
  // A sample verifies end to end with the public key.
  const v = provenix(["verify", top, expected[0]!, "--builder-id", BUILDER], env);
  assert.equal(v.code, 0, v.stderr + v.stdout);
  const exit = await d.stop("SIGTERM");
  assert.equal(exit.code, 0, "SIGTERM is a clean shutdown");
  assert.equal(d.events().at(-1)?.event, "stopped");
});

test("kill -9 mid-batch, then restart: all attested, none twice, journal intact", async (t) => {
  const { env, store } = home();
  const roots = gcRootDir();
  const first = Daemon.start(t, ["--gc-roots", roots, "--batch", "8"], env);
  await first.waitFor((e) => e.event === "started", "start");
  const building = buildGraph(300);
  await first.waitFor((e) => e.event === "attested", "a first attestation");
  first.child.kill("SIGKILL");
  await first.wait();
  const top = await building;
  const expected = closureOf(top);
  const mid = journalStats(store);
  assert.ok(mid.counts.attested < expected.length, "killed before it was done");
  const second = Daemon.start(t, ["--gc-roots", roots, "--batch", "8", "--quiet"], env, first.log);
  await waitAttested(store, expected.length);
  await second.stop();
  const subjects = attestedSubjects(store);
  assert.deepEqual([...subjects.keys()].sort(), expected);
  assert.ok(
    [...subjects.values()].every((n) => n === 1),
    "no duplicate after the crash",
  );
  const db = new Database(store, { readonly: true });
  assert.equal(db.pragma("integrity_check", { simple: true }), "ok");
  const statuses = db.prepare("SELECT status, count(*) AS n FROM journal GROUP BY status").all();
  assert.deepEqual(statuses, [{ status: "attested", n: expected.length }]);
  db.close();
  assert.deepEqual(readdirSync(roots), []);
});

test("builds while the daemon is stopped are attested when it starts; one daemon per store", async (t) => {
  const { env, store } = home();
  const roots = gcRootDir();
  const once = provenix(["daemon", "--once", "--gc-roots", roots, "--builder-id", BUILDER], env);
  assert.equal(once.code, 0, once.stderr);
  const top = await buildGraph(20);
  const d = Daemon.start(t, ["--gc-roots", roots], env);
  await waitAttested(store, 21);
  const second = provenix(["daemon", "--gc-roots", roots, "--builder-id", BUILDER], env);
  assert.equal(second.code, 5);
  assert.ok(isOneLineError(second), second.stderr);
  assert.match(second.stderr, /another provenix daemon \(pid \d+\) is running/);
  const status = JSON.parse(
    provenix(["status", "--json", "--builder-id", BUILDER], env).stdout,
  ) as {
    daemon: { running: boolean; pid: number };
    counts: { attested: number };
    queue: { pending: number };
    checkpoint: { nixDbId: number; unobserved: number };
  };
  assert.equal(status.daemon.running, true);
  assert.equal(status.daemon.pid, d.child.pid);
  assert.equal(status.counts.attested, 21);
  assert.equal(status.queue.pending, 0);
  assert.ok(d.events().some((e) => e.event === "reconciled" && e.observed === 21));
  await d.stop();
  assert.deepEqual([...attestedSubjects(store).keys()].sort(), closureOf(top));
  const after = JSON.parse(provenix(["status", "--json", "--builder-id", BUILDER], env).stdout) as {
    daemon: { running: boolean };
  };
  assert.equal(after.daemon.running, false);
});

test("GC roots keep outputs until attested; an output collected anyway is journaled as vanished", async () => {
  const dir = tempDir();
  const store = AttestationStore.open(join(dir, "a.db"));
  const nix = new NixDbStore();
  const roots = new GcRoots(gcRootDir());
  roots.ensure();
  const events: string[] = [];
  const key = generateKeyPair("nix", "gc-test");
  const chains = new Chains(
    {
      nix,
      feed: nix,
      host: new LocalBuildHost(),
      signer: keyBundleSigner(parseSecretKey(key.secret)),
      store,
      roots,
      emit: (e) => events.push(`${e.event} ${String(e.path)}`),
    },
    { builderId: BUILDER, provenixVersion: "test", retry: DEFAULT_RETRY, batchSize: 64, sboms: [] },
  );
  try {
    chains.initCheckpoint("now");
    const salt = `gc-${Date.now()}`;
    const [liba] = build("libA", salt);
    const [libb] = build("libB", salt);
    assert.equal(chains.observe(), 2);
    assert.deepEqual(roots.list(), [liba, libb].sort());
    // Nix's own garbage collector refuses to delete a rooted output.
    assert.throws(() => run("nix-store", ["--delete", liba!]), /still alive/);
    // One output is collected anyway (its root removed by hand).
    roots.release(libb!);
    run("nix-store", ["--delete", libb!]);
    const r = await chains.work();
    assert.deepEqual(r, { attested: 1, retrying: 0, failed: 0, vanished: 1 });
    assert.equal(store.journal.get(BUILDER, liba!)?.status, "attested");
    const gone = store.journal.get(BUILDER, libb!);
    assert.equal(gone?.status, "vanished");
    assert.match(gone?.reason ?? "", /garbage-collected before it was attested/);
    assert.deepEqual(roots.list(), [], "the attested output's root is released");
    run("nix-store", ["--delete", liba!]); // now collectable
    assert.ok(events.includes(`vanished ${libb}`));
    // Rebuilt, the vanished output is owed an attestation again.
    build("libB", salt);
    assert.equal(chains.observe(), 1);
    assert.equal(store.journal.get(BUILDER, libb!)?.status, "pending");
  } finally {
    store.close();
    nix.close();
  }
});

test("substituted paths are journaled with their binary-cache signatures, never attested", () => {
  const { env, store } = home();
  const dir = tempDir();
  run("nix-store", [
    "--generate-binary-cache-key",
    "cache-test-1",
    join(dir, "sk"),
    join(dir, "pk"),
  ]);
  const [app] = build("app", `subst-${Date.now()}`);
  const cache = `file://${join(dir, "cache")}`;
  run("nix", [
    "--extra-experimental-features",
    "nix-command",
    "copy",
    "--to",
    `${cache}?secret-key=${join(dir, "sk")}`,
    app!,
  ]);
  run("nix-store", ["--delete", app!]);
  const once = ["daemon", "--once", "--no-gc-roots", "--builder-id", BUILDER];
  assert.equal(provenix(once, env).code, 0);
  const pub = readFileSync(join(dir, "pk"), "utf8").trim();
  run("nix", [
    "--extra-experimental-features",
    "nix-command",
    "copy",
    "--from",
    cache,
    app!,
    "--option",
    "trusted-public-keys",
    pub,
  ]);
  assert.equal(provenix(once, env).code, 0);
  const s = AttestationStore.open(store);
  const row = s.journal.get(BUILDER, app!);
  assert.equal(row?.status, "substituted");
  assert.match(
    row?.reason ?? "",
    /^substituted, not built here; binary-cache signatures: cache-test-1:/,
  );
  assert.equal(s.find({ subjectName: app! }).length, 0, "no provenance claims a local build");
  s.close();
});

test("hook mode: install is idempotent, Nix runs the hook, the daemon drains the spool", () => {
  const { env, store } = home();
  const confDir = tempDir();
  const nixConf = join(confDir, "nix.conf");
  writeFileSync(nixConf, readFileSync(join(process.env.NIX_CONF_DIR!, "nix.conf")));
  const hookEnv = { ...env, NIX_CONF_DIR: confDir };
  const install = provenix(["hook", "install", "--json"], hookEnv);
  assert.equal(install.code, 0, install.stderr);
  const first = JSON.parse(install.stdout) as { hook: string; spool: string; backup: string };
  assert.ok(existsSync(first.backup));
  const conf = readFileSync(nixConf, "utf8");
  const again = JSON.parse(provenix(["hook", "install", "--json"], hookEnv).stdout) as {
    scriptWritten: boolean;
    nixConfChanged: boolean;
  };
  assert.deepEqual([again.scriptWritten, again.nixConfChanged], [false, false]);
  assert.equal(readFileSync(nixConf, "utf8"), conf, "installing twice changes nothing");

  // Nix itself runs the hook after each build.
  const once = ["daemon", "--once", "--mode", "hook", "--no-gc-roots", "--builder-id", BUILDER];
  assert.equal(provenix(once, hookEnv).code, 0);
  const salt = `hook-${Date.now()}`;
  const out = run("nix-build", [BUILDS, "-A", "app", "--no-out-link", "--argstr", "salt", salt], {
    ...process.env,
    NIX_CONF_DIR: confDir,
  }).trim();
  assert.equal(readdirSync(first.spool).length, 3, "one record per build (liba, libb, app)");
  const r = provenix([...once, "--reconcile", "3600"], hookEnv);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(readdirSync(first.spool), [], "spool drained");
  const s = AttestationStore.open(store);
  const row = s.journal.get(BUILDER, out);
  assert.equal(row?.status, "attested");
  assert.equal(s.journal.stats(BUILDER, Date.now()).counts.attested, 3);
  s.close();

  // Another tool's hook is never replaced; uninstall restores nix.conf.
  const un = provenix(["hook", "uninstall"], hookEnv);
  assert.equal(un.code, 0);
  assert.equal(readFileSync(nixConf, "utf8"), readFileSync(first.backup, "utf8"));
  assert.ok(!existsSync(first.hook));
  writeFileSync(nixConf, "post-build-hook = /etc/nix/upload-to-cache.sh\n");
  const conflict = provenix(["hook", "install"], hookEnv);
  assert.equal(conflict.code, 2);
  assert.ok(isOneLineError(conflict), conflict.stderr);
  assert.match(conflict.stderr, /already sets post-build-hook = \/etc\/nix\/upload-to-cache.sh/);
  assert.equal(readFileSync(nixConf, "utf8"), "post-build-hook = /etc/nix/upload-to-cache.sh\n");
});

test("a deriver collected before attestation fails for good with its reason; --retry-failed requeues", () => {
  const { env, store } = home();
  const once = ["daemon", "--once", "--no-gc-roots", "--builder-id", BUILDER];
  assert.equal(provenix(once, env).code, 0);
  const salt = `nodrv-${Date.now()}`;
  const [liba] = build("libA", salt);
  const drv = run("nix-store", ["-qd", liba!]).trim();
  run("nix-store", ["--delete", drv, "--option", "keep-derivations", "false"]);
  assert.equal(provenix(once, env).code, 0);
  const listed = JSON.parse(
    provenix(["status", "--json", "--list", "failed", "--builder-id", BUILDER], env).stdout,
  ) as {
    counts: { failed: number };
    list: { path: string; reason: string; attempts: number }[];
    lastError: { path: string };
  };
  assert.equal(listed.counts.failed, 1);
  assert.equal(listed.list[0]?.path, liba);
  assert.match(
    listed.list[0]?.reason ?? "",
    /derivation .* does not exist \(garbage-collected\?\)/,
  );
  assert.equal(listed.list[0]?.attempts, 1, "a permanent error is not retried");
  assert.equal(listed.lastError.path, liba);
  // Re-instantiated, the derivation is back: --retry-failed attests it.
  build("libA", salt);
  const r = provenix([...once, "--retry-failed"], env);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(journalStats(store).counts.attested, 1);
});

test("a full or read-only store directory: clear errors, retries, nothing lost", async (t) => {
  const mnt = tempDir("provenix-mnt-");
  run("mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt]);
  t.after(() => run("umount", ["-l", mnt]));
  const { env } = home();
  const store = join(mnt, "attestations.db");
  const denv = { ...env, PROVENIX_STORE: store };
  assert.equal(
    provenix(["daemon", "--once", "--no-gc-roots", "--builder-id", BUILDER], denv).code,
    0,
  );
  // Fill the disk, then build while the daemon runs.
  const filler = join(mnt, "filler");
  try {
    run("dd", ["if=/dev/zero", `of=${filler}`, "bs=64k"]);
  } catch {
    // dd stops at ENOSPC: the disk is full
  }
  const d = Daemon.start(t, ["--no-gc-roots", "--poll", "100"], denv);
  const top = await buildGraph(30);
  const full = await d.waitFor((e) => e.event === "store-error", "a store error");
  assert.match(String(full.error), /disk is full/);
  assert.equal(d.child.exitCode, null, "the daemon keeps running");
  run("rm", [filler]);
  await waitAttested(store, 31);
  await d.waitFor((e) => e.event === "recovered", "recovery");
  await d.stop();
  // Read-only: the filesystem remounted read-only under a stopped daemon; it
  // starts anyway, retries, and catches up once the store is writable again.
  run("mount", ["-o", "remount,ro", mnt]);
  const ro = Daemon.start(t, ["--no-gc-roots", "--poll", "100"], denv);
  const top2 = await buildGraph(10);
  const roError = await ro.waitFor((e) => e.event === "store-error", "a read-only error");
  assert.match(String(roError.error), /read-only|readonly/i);
  run("mount", ["-o", "remount,rw", mnt]);
  await waitAttested(store, 42);
  await ro.waitFor((e) => e.event === "recovered", "recovery");
  await ro.stop();
  const subjects = attestedSubjects(store);
  for (const p of [...closureOf(top), ...closureOf(top2)]) assert.equal(subjects.get(p), 1, p);
});

test("daemon --sbom signs a CycloneDX SBOM with each provenance", () => {
  const { env, store } = home();
  const once = [
    "daemon",
    "--once",
    "--no-gc-roots",
    "--builder-id",
    BUILDER,
    "--sbom",
    "cyclonedx",
  ];
  assert.equal(provenix(once, env).code, 0);
  const [app] = build("app", `sbom-${Date.now()}`);
  const r = provenix(once, env);
  assert.equal(r.code, 0, r.stderr);
  const s = AttestationStore.open(store);
  const found = s.find({ subjectName: app! });
  s.close();
  assert.deepEqual(found.map((a) => a.predicateType).sort(), [
    "https://cyclonedx.org/bom",
    "https://slsa.dev/provenance/v1",
  ]);
  const v = provenix(["verify", app!, "--builder-id", BUILDER], env);
  assert.equal(v.code, 0, v.stderr);
});
