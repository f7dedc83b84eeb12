import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import Database from "better-sqlite3";
import { AttestationStore, type NewAttestation } from "../../src/store/index.js";
import { ROOT, tempDir } from "../helpers/nix.js";

function attestation(i: number, keyid = "k"): NewAttestation {
  const payload = Buffer.from(`{"n":${i}}`);
  return {
    bundle: Buffer.concat([Buffer.from(`bundle-${keyid}-`), payload]),
    payload,
    keyid,
    predicateType: i % 2 === 0 ? "https://slsa.dev/provenance/v1" : "https://example/other",
    builderId: "b",
    derivation: `/nix/store/d${i}.drv`,
    subjects: [{ name: `/nix/store/s${i}`, sha256: `${i}`.padStart(64, "0") }],
  };
}

test("stores exact bytes, indexes by subject, digest, derivation, predicate, builder, time; dedups", () => {
  const store = AttestationStore.open(join(tempDir(), "sub", "a.db"));
  const a = attestation(2);
  const first = store.put(a);
  assert.deepEqual(store.put(a), { id: first.id, inserted: false });
  assert.equal(store.put(attestation(2, "other-key")).inserted, true);
  store.put(attestation(3));
  const [got] = store.find({
    subjectName: "/nix/store/s2",
    builderId: "b",
    predicateType: "https://slsa.dev/provenance/v1",
    keyid: undefined,
  } as never);
  assert.ok(got?.bundle.equals(a.bundle));
  assert.equal(store.find({ subjectSha256: "2".padStart(64, "0") }).length, 2);
  assert.equal(store.find({ derivation: "/nix/store/d3.drv" }).length, 1);
  assert.equal(store.find({ predicateType: "https://example/other" }).length, 1);
  assert.equal(store.find({ since: new Date(Date.now() + 60_000) }).length, 0);
  assert.equal(store.count(), 3);
  store.close();
});

test("bundlesNaming gives, for each subject, what find({ subjectName }) gives, in id order", () => {
  const store = AttestationStore.open(join(tempDir(), "a.db"));
  for (let i = 0; i < 30; i++) store.put(attestation(i));
  // A second attestation of s4 (another key) and one naming two subjects.
  store.put(attestation(4, "other-key"));
  const both = attestation(100);
  store.put({ ...both, subjects: [...both.subjects, { name: "/nix/store/s7" }] });
  const names = [
    "/nix/store/s4",
    "/nix/store/s7",
    "/nix/store/s7",
    "/nix/store/absent",
    "/nix/store/s29",
  ];
  const got = store.bundlesNaming(names);
  assert.deepEqual([...got.keys()].sort(), ["/nix/store/s29", "/nix/store/s4", "/nix/store/s7"]);
  for (const name of names) {
    const expected = store.find({ subjectName: name }).map((a) => ({ id: a.id, bundle: a.bundle }));
    assert.deepEqual(got.get(name) ?? [], expected, name);
  }
  assert.equal(got.get("/nix/store/s7")?.length, 2);
  store.close();
});

test("put inside a transaction joins it: a failure later in the transaction keeps none of its rows", () => {
  const store = AttestationStore.open(join(tempDir(), "a.db"));
  assert.throws(() =>
    store.transaction(() => {
      store.put(attestation(1));
      store.put(attestation(2));
      throw new Error("later step fails");
    }),
  );
  assert.equal(store.count(), 0);
  store.transaction(() => [store.put(attestation(1)), store.put(attestation(1))]);
  assert.equal(store.count(), 1);
  store.close();
});

test("several processes writing at once: every row lands once, none corrupt", async () => {
  const path = join(tempDir(), "concurrent.db");
  const script = `
    import { AttestationStore } from ${JSON.stringify(join(ROOT, "dist/src/store/index.js"))};
    const [path, worker] = process.argv.slice(1);
    const store = AttestationStore.open(path);
    for (let i = 0; i < 150; i++) {
      // Half the rows are shared by every worker: they must be kept once.
      const n = i % 2 === 0 ? i : Number(worker) * 1000 + i;
      const payload = Buffer.from(JSON.stringify({ n }));
      store.put({ bundle: payload, payload, keyid: "k", predicateType: "p", subjects: [{ name: "/nix/store/s" + n }] });
    }
    store.close();`;
  const workers = Array.from(
    { length: 6 },
    (_, w) =>
      new Promise<number>((resolve) => {
        const child = spawn(
          process.execPath,
          ["--input-type=module", "-e", script, path, String(w)],
          { stdio: "inherit" },
        );
        child.on("exit", (code) => resolve(code ?? -1));
      }),
  );
  assert.deepEqual(await Promise.all(workers), [0, 0, 0, 0, 0, 0]);
  const store = AttestationStore.open(path);
  assert.equal(store.count(), 75 + 6 * 75);
  store.close();
  const db = new Database(path, { readonly: true });
  assert.equal(db.pragma("integrity_check", { simple: true }), "ok");
  db.close();
});

test("a corrupt, foreign, or newer file gives a clear error and is left untouched", () => {
  const dir = tempDir();
  const garbage = join(dir, "garbage.db");
  writeFileSync(garbage, "this is not a database at all, just text ".repeat(200));
  assert.throws(() => AttestationStore.open(garbage), {
    code: "CORRUPT",
    message: /corrupt or not a SQLite database/,
  });

  const foreign = join(dir, "foreign.db");
  const f = new Database(foreign);
  f.exec("CREATE TABLE t (x)");
  f.close();
  assert.throws(() => AttestationStore.open(foreign), {
    code: "FOREIGN",
    message: /not a provenix attestation store/,
  });

  const good = join(dir, "good.db");
  AttestationStore.open(good).close();
  const g = new Database(good);
  g.pragma("user_version = 99");
  g.close();
  assert.throws(() => AttestationStore.open(good), { code: "NEWER_SCHEMA" });

  const truncated = join(dir, "truncated.db");
  const t = AttestationStore.open(truncated);
  for (let i = 0; i < 200; i++) t.put(attestation(i));
  t.close();
  const bytes = Buffer.alloc(8192, 0xab);
  writeFileSync(truncated, Buffer.concat([Buffer.from("SQLite format 3\0"), bytes]));
  assert.throws(() => AttestationStore.open(truncated), { code: "CORRUPT" });
});

test("an unwritable location is a clear UNWRITABLE error", () => {
  const file = join(tempDir(), "plain-file");
  writeFileSync(file, "x");
  assert.throws(() => AttestationStore.open(join(file, "sub", "a.db")), {
    code: "UNWRITABLE",
    message: /plain-file\/sub\/a.db/,
  });
});

test("a schema-1 store (before the journal and rebuilds) is migrated in place, its attestations kept", () => {
  const path = join(tempDir(), "v1.db");
  const store = AttestationStore.open(path);
  store.put(attestation(4));
  store.close();
  // Make it exactly what provenix with schema 1 left: no journal tables, version 1.
  const raw = new Database(path);
  raw.exec(
    "DROP TABLE journal; DROP TABLE daemon_state; DROP TABLE rebuild_items; DROP TABLE rebuild_runs; DROP TABLE reports; DROP TABLE pushes;",
  );
  raw.pragma("user_version = 1");
  raw.close();
  const reopened = AttestationStore.open(path);
  assert.equal(reopened.count(), 1);
  reopened.journal.record("b", [{ path: "/nix/store/x", status: "pending", source: "nix-db" }], 1);
  assert.equal(reopened.journal.get("b", "/nix/store/x")?.status, "pending");
  const digest = reopened.rebuilds.putReport("text/plain", Buffer.from("r"));
  assert.equal(reopened.rebuilds.getReport(digest)?.content.toString(), "r");
  reopened.close();
  const check = new Database(path, { readonly: true });
  assert.equal(check.pragma("user_version", { simple: true }), 6);
  assert.ok(
    check.prepare("SELECT 1 FROM sqlite_master WHERE name = 'journal_attestation'").get(),
    "the journal is indexed by attestation, for gc",
  );
  check.close();
});

test("a schema-4 store (pushes without kind) is migrated in place: its image pushes stay image pushes, and cache publications can be queued", () => {
  const path = join(tempDir(), "v4.db");
  const store = AttestationStore.open(path);
  store.pushes.enqueue("/nix/store/a", "registry.example/nix/a:tag", 1);
  store.close();
  const raw = new Database(path);
  raw.exec(
    "DROP INDEX journal_attestation; DROP INDEX rebuild_items_attestation; DROP INDEX pushes_kind_due; ALTER TABLE pushes DROP COLUMN kind;",
  );
  raw.pragma("user_version = 4");
  raw.close();
  const reopened = AttestationStore.open(path);
  assert.deepEqual(
    reopened.pushes.list("image").map((r) => [r.kind, r.path, r.status]),
    [["image", "/nix/store/a", "pending"]],
  );
  reopened.pushes.enqueue("/nix/store/a", "file:///srv/cache", 2, "cache");
  assert.deepEqual(
    reopened.pushes.due("cache", 3, 10).map((r) => r.destination),
    ["file:///srv/cache"],
  );
  assert.equal(reopened.pushes.owes("/nix/store/a", "cache"), true);
  reopened.pushes.pushed("/nix/store/a", "file:///srv/cache", null, null, 4);
  // A finished publication is queued again when the path has new attestations.
  reopened.pushes.enqueue("/nix/store/a", "file:///srv/cache", 5, "cache");
  assert.equal(reopened.pushes.owes("/nix/store/a", "cache"), true);
  assert.deepEqual(reopened.pushes.counts("image"), {
    pending: 1,
    pushed: 0,
    failed: 0,
    skipped: 0,
  });
  reopened.close();
});

test("removing attestations takes their subjects and journal entries, and unlinks a rebuild item without losing its verdict", () => {
  const store = AttestationStore.open(join(tempDir(), "remove.db"));
  const gone = store.put(attestation(10)).id;
  const kept = store.put(attestation(11)).id;
  store.journal.record("b", [{ path: "/nix/store/x", status: "pending", source: "nix-db" }], 1);
  store.journal.markAttested("b", ["/nix/store/x"], gone, 2);
  const run = store.rebuilds.openRun("/nix/store/r.drv", "build", "b", ["/nix/store/r.drv"], false);
  store.rebuilds.setItem(run.id, {
    drvPath: "/nix/store/r.drv",
    status: "reproducible",
    attestationId: gone,
  });
  assert.equal(store.remove([gone]), 1);
  assert.deepEqual(
    store.find({}).map((a) => a.id),
    [kept],
  );
  assert.equal(store.journal.get("b", "/nix/store/x"), undefined);
  assert.deepEqual(store.rebuilds.items(run.id), [
    { drvPath: "/nix/store/r.drv", status: "reproducible" },
  ]);
  store.close();
});
