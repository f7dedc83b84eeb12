// Nix's own provenance records (Determinate Nix), in the shapes of Determinate's test
// suite (shared/reference/nix-json/determinate-nix-src), carried signed in provenix's
// provenance. Determinate Nix is not installable here: its record is put where it
// keeps it, a `provenance` column of ValidPaths, in a copy of this machine's real
// Nix database, and read back through the same adapter as any other field.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import Database from "better-sqlite3";
import {
  buildProvenance,
  gatherBuildFacts,
  IN_TOTO_PAYLOAD_TYPE,
  serializeStatement,
  type BuildHost,
} from "../../src/attest/index.js";
import { parsePathInfoJson, summarizeNixProvenance } from "../../src/nix/index.js";
import { generateKeyPair, parseSecretKey, signBundle } from "../../src/sign/index.js";
import { DEFAULT_NIX_DB, NixDbStore } from "../../src/system/nix-db.js";
import { build, instantiate, ROOT, tempDir, useTestNix } from "../helpers/nix.js";
import { sigstoreVerify } from "../helpers/sigstore.js";

useTestNix();

const DOC = join(
  ROOT,
  "..",
  "shared",
  "reference",
  "nix-json",
  "determinate-nix-src",
  "provenance-expected-output.md",
);

/** The JSON blocks of Determinate's expected output, with the test's placeholders filled in. */
function records(drvBase: string): Record<string, unknown>[] {
  const text = readFileSync(DOC, "utf8");
  return [...text.matchAll(/```json\n([\s\S]*?)```/g)].map(
    (m) =>
      JSON.parse(
        (m[1] as string)
          .replaceAll('$(basename "$drvPath")', drvBase)
          .replaceAll("$system", "x86_64-linux")
          .replaceAll("$rev", "0123456789abcdef0123456789abcdef01234567")
          .replaceAll("$lastModified", "1700000000")
          .replaceAll("$flake1Dir", "/tmp/flake1")
          .replaceAll("$binaryCache", "/tmp/cache"),
      ) as Record<string, unknown>,
  );
}

test("Determinate's provenance chains: build, copied, tree, subpath steps summarized; the flake, its output, the host and the caches found", () => {
  const [build_, tree, subpath, copied] = records("abc-simple.drv");
  const b = summarizeNixProvenance(build_);
  assert.deepEqual(b?.steps, ["build", "derivation", "flake", "subpath", "tree"]);
  assert.equal(b?.flake?.output, "packages.x86_64-linux.default");
  assert.equal(b?.flake?.pure, true);
  assert.equal(
    b?.flake?.reference,
    "file:///tmp/flake1?rev=0123456789abcdef0123456789abcdef01234567",
  );
  assert.equal(b?.buildHost, "test-host");
  assert.deepEqual(b?.tags, { branch: "main", pr: "1234" });
  assert.deepEqual(summarizeNixProvenance(tree)?.steps, ["tree"]);
  assert.equal(summarizeNixProvenance(tree)?.flake, undefined, "a tree alone is no flake build");
  assert.deepEqual(summarizeNixProvenance(subpath)?.steps, ["subpath", "tree"]);
  const c = summarizeNixProvenance(copied);
  assert.deepEqual(c?.copiedFrom, ["file:///tmp/cache"]);
  assert.equal(c?.steps[0], "copied");
  assert.equal(summarizeNixProvenance("not a record"), undefined);

  // In `nix path-info --json` (--json-format 1 and 2), the record is the object's field.
  const info = parsePathInfoJson(
    {
      "/nix/store/n5wkd9frr45pa74if5gpz9j7mifg27fh-foo": {
        narHash: "sha256-FePFYIlMuycIXPZbWi7LGEiMmZSX9FMbaQenWBzm1Sc=",
        narSize: 1,
        references: [],
        provenance: build_,
      },
    },
    "/nix/store",
  );
  assert.deepEqual(info.get("/nix/store/n5wkd9frr45pa74if5gpz9j7mifg27fh-foo")?.provenance, build_);
});

test("a record in the Nix database's ValidPaths.provenance is carried whole and signed; the flake and attribute it names are marked as supplied by it", async () => {
  const salt = `nixprov-${Date.now()}`;
  const [out] = build("libA", salt);
  const drvPath = instantiate("libA", salt);
  const copy = join(tempDir(), "db.sqlite");
  await new Database(DEFAULT_NIX_DB, { readonly: true }).backup(copy);
  const [record] = records(drvPath.slice("/nix/store/".length));
  const db = new Database(copy);
  db.exec("ALTER TABLE ValidPaths ADD COLUMN provenance TEXT");
  db.prepare("UPDATE ValidPaths SET provenance = ? WHERE path = ?").run(
    JSON.stringify(record),
    out,
  );
  db.close();

  const store = new NixDbStore(copy);
  const host: BuildHost = {
    nixInfo: () => Promise.resolve({ version: "3.16.0", settings: {} }),
    buildLog: () => Promise.resolve(undefined),
  };
  const st = buildProvenance(
    await gatherBuildFacts(store, host, drvPath, {
      builderId: "https://example.org/builder",
      provenixVersion: "test",
    }),
  );
  store.close();
  const def = st.predicate?.buildDefinition;
  assert.deepEqual(def?.internalParameters?.nixProvenance?.record, record);
  assert.deepEqual(def?.internalParameters?.nixProvenance?.steps, [
    "build",
    "derivation",
    "flake",
    "subpath",
    "tree",
  ]);
  assert.equal(
    def?.externalParameters.installable,
    "file:///tmp/flake1?rev=0123456789abcdef0123456789abcdef01234567",
  );
  assert.equal(def?.externalParameters.attribute, "packages.x86_64-linux.default");
  assert.deepEqual(def?.internalParameters?.nixProvenance?.supplied, [
    "externalParameters.installable",
    "externalParameters.attribute",
  ]);
  // Nix's unsigned record is now inside a signature another verifier checks.
  const signer = parseSecretKey(generateKeyPair("pem-p256", "x").secret);
  sigstoreVerify(
    signBundle(serializeStatement(st), IN_TOTO_PAYLOAD_TYPE, signer),
    signer.publicKey,
  );
});
