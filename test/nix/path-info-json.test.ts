// `nix path-info --json` in every shape Nix has printed, read by one tolerant reader,
// on Nix's own test-suite data (shared/reference/nix-json) and the real Nix here.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { NixError, parsePathInfoJson, pathInfoShape, type PathInfo } from "../../src/nix/index.js";
import { NixDbStore } from "../../src/system/nix-db.js";
import { build, nixCmd, ROOT, useTestNix } from "../helpers/nix.js";

useTestNix();

const REF = join(ROOT, "..", "shared", "reference", "nix-json", "nixos-nix");
const sample = (version: string, file: string): Record<string, unknown> =>
  JSON.parse(readFileSync(join(REF, version, "path-info", file), "utf8")) as Record<
    string,
    unknown
  >;

const BASE = "n5wkd9frr45pa74if5gpz9j7mifg27fh-foo";
const PATH = `/nix/store/${BASE}`;

/** Each sample is one object; wrap it the way the command prints it in that version. */
const documents: [string, unknown][] = [
  ["2.32 map of full paths", { [PATH]: sample("2.32.0", "impure.json") }],
  ["2.33 --json-format 1", { [PATH]: sample("master", "json-1/impure.json") }],
  [
    "2.33 --json-format 2",
    {
      version: 2,
      storeDir: "/nix/store",
      info: { [BASE]: sample("master", "json-2/impure.json") },
    },
  ],
  [
    "2.35 --json-format 3",
    {
      version: 3,
      storeDir: "/nix/store",
      info: { [BASE]: sample("master", "json-3/impure.json") },
    },
  ],
  // <= 2.18 and Lix: a list with "path" (lix/doc/path-info.md), made from the same object.
  ["<= 2.18 and Lix list", [{ path: PATH, ...sample("2.32.0", "impure.json") }]],
];

test("path-info: list, map, formats 1, 2 and 3 give the same info, with full paths and Nix's legacy strings", () => {
  const results = documents.map(([what, doc]) => {
    const m = parsePathInfoJson(doc, "/nix/store");
    assert.deepEqual([...m.keys()], [PATH], what);
    return [what, m.get(PATH) as PathInfo] as const;
  });
  const [, first] = results[0] as readonly [string, PathInfo];
  // The format-1 sample carries ca as Nix's string, format 2 as {method, hash}: our
  // conversion must give Nix's own string for the same address.
  assert.equal(first.ca, "fixed:r:sha256:1lr187v6dck1rjh2j6svpikcfz53wyl3qrlcbb405zlh13x0khhh");
  assert.deepEqual(first.references, [
    "/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-bar",
    "/nix/store/n5wkd9frr45pa74if5gpz9j7mifg27fh-foo",
  ]);
  assert.equal(first.deriver, "/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-bar.drv");
  assert.equal(first.ultimate, true);
  for (const [what, info] of results) {
    // 2.32's test data has placeholder signatures ("asdf"); later ones name:base64.
    const { signatures, ...rest } = info;
    const { signatures: firstSigs, ...firstRest } = first;
    assert.deepEqual(rest, firstRest, what);
    assert.equal(signatures.length, firstSigs.length, what);
  }
  const [, v2] = results[2] as readonly [string, PathInfo];
  const [, v3] = results[3] as readonly [string, PathInfo];
  assert.deepEqual(v3.signatures, v2.signatures, "{keyName, sig} is name:base64");
  assert.deepEqual(
    documents.map(([, d]) => pathInfoShape(d)),
    ["map", "map", "format-2", "format-3", "list"],
  );
});

test("path-info: invalid paths (null, valid: false) are left out; empty and null fields read as absent; bad documents are NixErrors", () => {
  assert.equal(parsePathInfoJson({ [PATH]: null }, "/nix/store").size, 0);
  assert.equal(parsePathInfoJson([{ path: PATH, valid: false }], "/nix/store").size, 0);
  for (const [version, file] of [
    ["2.32.0", "empty_impure.json"],
    ["master", "json-1/empty_impure.json"],
  ] as const) {
    const info = parsePathInfoJson({ [PATH]: sample(version, file) }, "/nix/store").get(PATH);
    assert.equal(info?.deriver, undefined, file);
    assert.equal(info?.ca, undefined, file);
    assert.equal(info?.registrationTime, undefined, file);
    assert.deepEqual(info?.references, [], file);
  }
  const bad: unknown[] = [
    "text",
    [{ narHash: "x" }],
    { [PATH]: { narSize: 1 } },
    { [PATH]: { narHash: "sha256-FePFYIlMuycIXPZbWi7LGEiMmZSX9FMbaQenWBzm1Sc=", references: [1] } },
    { version: 9, info: {} },
    { version: 2, storeDir: "/other/store", info: {} },
  ];
  for (const doc of bad) {
    assert.throws(() => parsePathInfoJson(doc, "/nix/store"), NixError, JSON.stringify(doc));
  }
});

test("path-info: the real nix path-info --json here reads the same as the Nix database", async () => {
  const [out] = build("app");
  const doc: unknown = JSON.parse(nixCmd("path-info", "--json", out as string));
  const fromCli = parsePathInfoJson(doc, "/nix/store").get(out as string);
  const db = new NixDbStore();
  const fromDb = (await db.pathInfos([out as string])).get(out as string);
  db.close();
  assert.deepEqual(fromCli, fromDb);
});
