import assert from "node:assert/strict";
import { test } from "node:test";
import { isStorePath, parseDrvName, parseStorePath, toStorePath } from "../../src/nix/index.js";
import { build, instantiate, nixCmd, useTestNix } from "../helpers/nix.js";

useTestNix();

test("real store paths parse into hash part and name", () => {
  const [out] = build("app");
  const drv = instantiate("app");
  for (const p of [out as string, drv]) {
    const sp = parseStorePath(p);
    assert.equal(sp.path, p);
    assert.equal(sp.hashPart.length, 32);
    assert.equal(`/nix/store/${sp.hashPart}-${sp.name}`, p);
  }
  assert.equal(parseStorePath(drv).name, "app-3.0.drv");
});

test("invalid store paths are rejected with the reason", () => {
  const h = "ykcxdhqj4rcygk1a6jb6jxsk4mj0bgcw";
  const cases: [string, string, RegExp][] = [
    ["/tmp/x", "NOT_IN_STORE", /not in the Nix store/],
    [`/nix/store/${h}`, "INVALID_STORE_PATH", /hash part/],
    [`/nix/store/${h.slice(0, 31)}e-x`, "INVALID_STORE_PATH", /hash part/],
    [`/nix/store/${h.slice(0, 31)}u-x`, "INVALID_STORE_PATH", /hash part/],
    [`/nix/store/${h}-`, "INVALID_STORE_PATH", /invalid name/],
    [`/nix/store/${h}-.`, "INVALID_STORE_PATH", /invalid name/],
    [`/nix/store/${h}-..`, "INVALID_STORE_PATH", /invalid name/],
    [`/nix/store/${h}-a b`, "INVALID_STORE_PATH", /invalid name/],
    [`/nix/store/${h}-${"n".repeat(212)}`, "INVALID_STORE_PATH", /invalid name/],
    [`/nix/store/${h}-x/bin`, "INVALID_STORE_PATH", /inside a store path/],
  ];
  for (const [p, code, msg] of cases)
    assert.throws(() => parseStorePath(p), { code, message: msg }, p);
  assert.equal(isStorePath(`/nix/store/${h}-${"n".repeat(211)}`), true);
  assert.equal(toStorePath(`/nix/store/${h}-x/bin/sh`).path, `/nix/store/${h}-x`);
});

test("the name rules agree with Nix: names Nix accepts parse, names it refuses do not", () => {
  for (const name of ["ok-name_1.2+3?=", "x", "a.b", ".dot"]) {
    const p = nixCmd("store", "add-file", "--dry-run", "--name", name, "/etc/hostname").trim();
    assert.equal(parseStorePath(p).name, name);
  }
  for (const name of ["sp ace", "col:on", "ü"]) {
    assert.throws(() => nixCmd("store", "add-file", "--dry-run", "--name", name, "/etc/hostname"));
  }
});

test("parseDrvName splits like builtins.parseDrvName", () => {
  const names = [
    "hello-2.12.1",
    "perl-DBI-1.643",
    "nix",
    "foo-bar",
    "openssl-3.0.1-dev",
    "a-1b",
    "x-",
  ];
  const expected = JSON.parse(
    nixCmd(
      "eval",
      "--json",
      "--expr",
      `map builtins.parseDrvName ${JSON.stringify(names).replace(/,/g, " ")}`,
    ),
  ) as { name: string; version: string }[];
  assert.deepEqual(names.map(parseDrvName), expected);
});
