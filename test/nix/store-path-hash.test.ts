// Store paths computed as Nix computes them, checked against Nix itself: every .drv
// of a real closure (its path from its bytes), fixed outputs built here, and Nix's
// own test data; then forgeries that must be refused.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import {
  checkDerivationPaths,
  makeFixedOutputPath,
  makeTextPath,
  NixError,
  parseDerivation,
  unparseDerivation,
  type Derivation,
} from "../../src/nix/index.js";
import { readDerivationFile } from "../../src/system/nix-cli.js";
import { GRAPH, instantiate, ROOT, run, useTestNix } from "../helpers/nix.js";

useTestNix();

const REF = join(
  ROOT,
  "..",
  "shared",
  "reference",
  "nix-json",
  "nixos-nix",
  "2.22.0",
  "derivation",
);

test("every .drv of a real closure has the path its bytes and references give, and each fixed output the path its hash gives", async () => {
  const top = run("nix-instantiate", [GRAPH, "--arg", "n", "300", "--arg", "seed", "5"]).trim();
  const fixtures = ["app", "multi", "structured", "escapes", "tree", "srcFlat", "srcDir"].map((a) =>
    instantiate(a),
  );
  const drvs = run("nix-store", ["--query", "--requisites", top, ...fixtures])
    .split("\n")
    .filter((l) => l.endsWith(".drv"));
  let fixed = 0;
  for (const p of drvs) {
    const drv = await readDerivationFile(p); // throws if a path does not match
    fixed += drv.outputs.filter(([, o]) => o.kind === "caFixed").length;
  }
  assert.ok(drvs.length > 300);
  assert.ok(fixed >= 2, `fixed outputs checked: ${fixed}`);
});

test("fixed-output paths of Nix's own test data: nar, flat and text methods", () => {
  for (const [file, method, hashAlgo] of [
    ["output-caFixedNAR.json", "nar", "sha256"],
    ["output-caFixedFlat.json", "flat", "sha256"],
    ["output-caFixedText.json", "text", "sha256"],
  ] as const) {
    const o = JSON.parse(readFileSync(join(REF, file), "utf8")) as { hash: string; path: string };
    assert.equal(
      makeFixedOutputPath("drv-name-output-name", method, hashAlgo, o.hash, "/nix/store"),
      o.path,
      file,
    );
  }
});

test("forgeries are refused: changed bytes, a fixed output moved, a repeated environment variable", () => {
  const drvPath = instantiate("srcFlat");
  const bytes = readFileSync(drvPath);
  const drv = parseDerivation(bytes.toString(), drvPath);
  checkDerivationPaths(drvPath, bytes, drv, "/nix/store");

  const changed = Buffer.from(bytes.toString().replace('("system","', '("system","x'));
  assert.throws(
    () => checkDerivationPaths(drvPath, changed, parseDerivation(changed.toString()), "/nix/store"),
    (e: unknown) =>
      e instanceof NixError && /its contents and references give the path/.test(e.message),
  );

  // The same .drv claiming another output path, at the path its new bytes give: the
  // .drv path checks out, the fixed output does not.
  const [name, out] = drv.outputs[0] ?? [];
  assert.equal(out?.kind, "caFixed");
  if (out?.kind !== "caFixed" || name === undefined) return;
  const moved: Derivation = {
    ...drv,
    outputs: [[name, { ...out, path: "/nix/store/00000000000000000000000000000000-evil" }]],
  };
  const movedBytes = Buffer.from(unparseDerivation(moved));
  const movedPath = makeTextPath(
    drvPath.slice("/nix/store/".length + 33),
    createHash("sha256").update(movedBytes).digest("hex"),
    [...moved.inputSrcs, ...moved.inputDrvs.map(([p]) => p)],
    "/nix/store",
  );
  assert.throws(
    () => checkDerivationPaths(movedPath, movedBytes, moved, "/nix/store"),
    /fixed output 'out' claims \/nix\/store\/0{32}-evil, but its content address/,
  );

  const twice = bytes.toString().replace(/\)\]\)$/, '),("name","again")])');
  assert.throws(
    () => parseDerivation(twice, "twice.drv"),
    (e: unknown) =>
      e instanceof NixError &&
      e.code === "MALFORMED_DERIVATION" &&
      /the environment variable 'name' is given twice/.test(e.message),
  );
});
