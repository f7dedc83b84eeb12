// Pure parts of chains mode, checked against real Nix and a real /bin/sh.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import {
  ChainsError,
  classifyRegistered,
  hookScript,
  nextAttempt,
  parseSpoolRecord,
  withHook,
  withoutHook,
} from "../../src/chains/index.js";
import { NixDbStore } from "../../src/system/nix-db.js";
import { cliHome, isOneLineError, provenix } from "../helpers/cli.js";
import {
  build,
  instantiate,
  nixConfigShowJson,
  run,
  tempDir,
  useTestNix,
  writeNixFile,
} from "../helpers/nix.js";

useTestNix();

test("classifies what Nix registers: built outputs pending, .drv and added sources skipped", () => {
  const db = new NixDbStore();
  try {
    const before = db.lastId();
    const salt = `classify-${Date.now()}`;
    const [out] = build("app", salt);
    const src = run("nix-store", ["--add", writeNixFile(tempDir(), "src.txt", salt)]).trim();
    const rows = db.registeredSince(before, 1000);
    const byPath = new Map(rows.map((r) => [r.path, classifyRegistered(r, "nix-db")]));
    assert.ok(
      rows.every((r, i) => i === 0 || r.id > rows[i - 1]!.id),
      "ids grow",
    );
    const drv = instantiate("app", salt);
    assert.equal(byPath.get(drv), undefined, ".drv files are inputs, not outputs");
    assert.ok(byPath.has(drv), "the .drv was registered");
    assert.equal(byPath.get(src), undefined, "nix-store --add is not a build");
    const o = byPath.get(out!);
    assert.equal(o?.status, "pending");
    assert.equal(o?.deriver, drv);
    const reg = rows.find((r) => r.path === out)!;
    assert.equal(o?.registeredAt, reg.registrationTime * 1000);
    assert.equal(db.lastId(), rows.at(-1)!.id);
  } finally {
    db.close();
  }
});

test("backoff doubles from the base, is capped, and ends in failed", () => {
  const p = { baseMs: 1000, maxMs: 5000, maxAttempts: 5 };
  const delays = [1, 2, 3, 4].map((a) => nextAttempt(a, 100, p).nextAttemptAt - 100);
  assert.deepEqual(delays, [1000, 2000, 4000, 5000]);
  assert.equal(nextAttempt(4, 0, p).terminal, false);
  assert.equal(nextAttempt(5, 0, p).terminal, true);
  assert.equal(nextAttempt(1, 0, p, true).terminal, true, "a permanent error is not retried");
});

test("the hook script spools one record per build with /bin/sh, and always exits 0", () => {
  const dir = tempDir();
  const spool = join(dir, "spool it's");
  const hook = writeNixFile(dir, "hook", hookScript(spool));
  const env = { PATH: "/nonexistent", DRV_PATH: "/nix/store/aaa-x.drv", OUT_PATHS: "" };
  // The spool is missing: still exit 0, nothing written, no error output.
  assert.equal(execFileSync("/bin/sh", [hook], { env, encoding: "utf8" }), "");
  execFileSync("mkdir", [spool]);
  // PATH points nowhere: the hook must need no external command.
  for (let i = 0; i < 3; i++) execFileSync("/bin/sh", [hook], { env });
  execFileSync("/bin/sh", [hook], {
    env: { ...env, OUT_PATHS: "/nix/store/bbb-x /nix/store/ccc-x-doc" },
  });
  const files = readdirSync(spool);
  assert.equal(files.length, 4, "a record per run, none overwritten");
  const records = files.map((f) => parseSpoolRecord(readFileSync(join(spool, f), "utf8")));
  assert.ok(records.every((r) => r?.drvPath === "/nix/store/aaa-x.drv"));
  assert.deepEqual(records.map((r) => r?.outPaths.length).sort(), [0, 0, 0, 2]);
  assert.equal(parseSpoolRecord("provenix-hook-v1\t/nix/store/aaa-x.drv"), undefined, "incomplete");
  assert.throws(() => parseSpoolRecord("garbage\n"), ChainsError);
});

test("nix.conf edits are idempotent, reversible, and never replace another hook", () => {
  const conf = "sandbox = false\n# post-build-hook = /commented/out\n";
  const a = withHook(conf, "/var/lib/provenix/post-build-hook");
  assert.equal(a.changed, true);
  assert.match(a.text, /^post-build-hook = \/var\/lib\/provenix\/post-build-hook$/m);
  assert.deepEqual(withHook(a.text, "/var/lib/provenix/post-build-hook"), {
    text: a.text,
    changed: false,
  });
  assert.deepEqual(withoutHook(a.text, "/var/lib/provenix/post-build-hook"), {
    text: conf,
    changed: true,
  });
  assert.throws(
    () => withHook("post-build-hook = /etc/nix/upload.sh\n", "/x/hook"),
    (e: unknown) => e instanceof ChainsError && e.code === "HOOK_CONFLICT",
  );
  // What we write is a nix.conf Nix accepts with our hook set.
  const dir = tempDir();
  writeFileSync(join(dir, "nix.conf"), a.text);
  const settings = nixConfigShowJson({ ...process.env, NIX_CONF_DIR: dir });
  assert.equal(settings["post-build-hook"]?.value, "/var/lib/provenix/post-build-hook");
  assert.ok(existsSync(join(dir, "nix.conf")));
});

test("daemon bad input: unknown mode, unreadable Nix database, bad numbers: one line, documented codes", () => {
  const env = cliHome();
  assert.equal(provenix(["keygen"], env).code, 0);
  const cases: [string[], NodeJS.ProcessEnv, number, RegExp][] = [
    [["daemon", "--mode", "inotify"], env, 2, /--mode takes db or hook, not 'inotify'/],
    [["daemon", "--poll", "fast"], env, 2, /--poll takes a whole number/],
    [
      ["daemon", "--once"],
      { ...env, NIX_DB: "/nonexistent/db.sqlite" },
      6,
      /cannot read the Nix database/,
    ],
    [["status", "--list", "done"], env, 2, /--list takes pending or attested/],
    [["hook", "reinstall"], env, 2, /hook takes 'install' or 'uninstall'/],
  ];
  for (const [args, e, code, message] of cases) {
    const r = provenix(args, e);
    assert.equal(r.code, code, `${args.join(" ")}: ${r.stderr}`);
    assert.ok(isOneLineError(r), `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message);
  }
});
