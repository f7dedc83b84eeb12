// provenix gc against real Nix: only attestations older than the retention period
// whose subjects are all gone from the store are removed.
import assert from "node:assert/strict";
import { join } from "node:path";
import test from "node:test";
import Database from "better-sqlite3";
import { cliHome, isOneLineError, provenix } from "../helpers/cli.js";
import { build, instantiate, run, useTestNix } from "../helpers/nix.js";

useTestNix();

interface Report {
  candidates: number;
  dryRun: boolean;
  removed: { id: number; subjects: string[]; predicateType: string }[];
  bytes: number;
  kept: { present: number; notStorePath: number };
}

test("gc removes attestations of garbage-collected paths past the retention period, never the evidence of a path still present", () => {
  const env = cliHome();
  assert.equal(provenix(["keygen"], env).code, 0, "keygen");
  const salt = `gc-${process.pid}-${Date.now()}`;
  const [gone] = build("escapes", `${salt}-gone`);
  const [present] = build("escapes", `${salt}-present`);
  const multi = run("nix-store", ["--realise", instantiate("multi", salt)])
    .split("\n")
    .filter((l) => l !== "");
  assert.ok(gone && present && multi.length === 3);
  for (const p of [gone, present, multi[0] as string])
    assert.equal(provenix(["attest", p], env).code, 0, `attest ${p}`);
  // The paths that go: one single-output path, and one output of three.
  const dev = multi.find((p) => p.endsWith("-dev")) as string;
  run("nix-store", ["--delete", gone]);
  run("nix-store", ["--delete", dev]);

  // Nothing is older than a day yet.
  const day = provenix(["gc", "--json", "--older-than", "1d"], env);
  assert.equal(day.code, 0, day.stderr);
  assert.deepEqual((JSON.parse(day.stdout) as Report).candidates, 0);

  // Make every attestation 100 days old, as time would.
  const dbFile = join(env.XDG_DATA_HOME ?? "", "provenix", "attestations.db");
  const db = new Database(dbFile);
  db.prepare("UPDATE attestations SET created_at = ?").run(Date.now() - 100 * 86_400_000);
  const total = (db.prepare("SELECT count(*) AS n FROM attestations").get() as { n: number }).n;
  db.close();

  const dry = JSON.parse(
    provenix(["gc", "--json", "--dry-run", "--older-than", "90d"], env).stdout,
  ) as Report;
  assert.equal(dry.dryRun, true);
  assert.equal(dry.candidates, total);
  assert.deepEqual(
    dry.removed.map((r) => r.subjects),
    [[gone]],
    "only the attestation whose every subject is gone",
  );
  assert.equal(dry.kept.present, total - 1, "multi has outputs still present: kept");
  assert.ok(dry.bytes > 0);
  assert.equal(
    (
      JSON.parse(
        provenix(["gc", "--json", "--dry-run", "--older-than", "90d"], env).stdout,
      ) as Report
    ).removed.length,
    1,
    "a dry run removes nothing",
  );

  const real = provenix(["gc", "--older-than", "90d", "--vacuum"], env);
  assert.equal(real.code, 0, real.stderr);
  assert.match(real.stdout, /^removed 1 of \d+ attestation\(s\)/);
  assert.match(real.stdout, /https:\/\/slsa\.dev\/provenance\/v1/);
  const check = new Database(dbFile, { readonly: true });
  const subjectsLeft = (check.prepare("SELECT name FROM subjects").all() as { name: string }[]).map(
    (r) => r.name,
  );
  const left = (check.prepare("SELECT count(*) AS n FROM attestations").get() as { n: number }).n;
  check.close();
  assert.equal(left, total - 1);
  assert.ok(!subjectsLeft.includes(gone), "the gone path's attestation is removed");
  assert.ok(subjectsLeft.includes(dev), "multi's attestation stays, with its gone dev output");
  const kept = provenix(["show", "--json", present], env);
  assert.equal(kept.code, 0, kept.stderr);
  const again = JSON.parse(provenix(["gc", "--json", "--older-than", "90d"], env).stdout) as Report;
  assert.equal(again.removed.length, 0);

  const bad = provenix(["gc", "--older-than", "ninety days"], env);
  assert.equal(bad.code, 2, bad.stderr);
  assert.ok(isOneLineError(bad), bad.stderr);
  assert.match(bad.stderr, /--older-than takes a period such as 90d/);
});

test("gc keeps an old attestation unless every subject is a store path that is gone", async () => {
  const { keepReason } = await import("../../src/app/gc.js");
  const a = "/nix/store/00000000000000000000000000000000-a";
  const b = "/nix/store/11111111111111111111111111111111-b";
  const valid = new Set([b]);
  assert.equal(keepReason([a], valid, "/nix/store"), undefined);
  assert.equal(keepReason([a, b], valid, "/nix/store"), "present");
  assert.equal(
    keepReason([a, "oci://registry.example/app@sha256:00"], valid, "/nix/store"),
    "notStorePath",
  );
  assert.equal(keepReason([], valid, "/nix/store"), "notStorePath");
});
