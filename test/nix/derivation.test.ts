import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import {
  derivationToJson,
  fetchUrls,
  NixError,
  parseDerivation,
  structuredAttrs,
  unparseDerivation,
  type Derivation,
} from "../../src/nix/index.js";
import { FIXTURES, GRAPH, instantiate, run, showDerivations, useTestNix } from "../helpers/nix.js";

useTestNix();

function roundTripAndCompare(drvPaths: string[], extraFeatures = ""): number {
  const json = showDerivations(drvPaths, extraFeatures);
  let n = 0;
  for (const p of drvPaths) {
    const text = readFileSync(p, "utf8");
    const drv = parseDerivation(text, p);
    assert.equal(unparseDerivation(drv), text, `round trip of ${p}`);
    assert.deepEqual(derivationToJson(drv), json.get(p), `Nix's JSON of ${p}`);
    n++;
  }
  return n;
}

test("every .drv of a real 2,000-derivation closure round-trips byte for byte and agrees with nix show-derivation", () => {
  const top = run("nix-instantiate", [GRAPH, "--arg", "n", "2000", "--arg", "seed", "11"]).trim();
  const closure = run("nix-store", ["--query", "--requisites", top])
    .split("\n")
    .filter((l) => l.endsWith(".drv"));
  assert.ok(closure.length >= 2001, `closure has ${closure.length} derivations`);
  assert.equal(roundTripAndCompare(closure), closure.length);
});

test("fixture derivations: multiple outputs, fixed outputs, structured attrs, escapes, inputs", () => {
  const attrs = ["app", "multi", "structured", "escapes", "tree", "srcFlat", "srcDir"];
  const drvs = attrs.map((a) => instantiate(a));
  roundTripAndCompare(
    run("nix-store", ["--query", "--requisites", ...drvs])
      .split("\n")
      .filter((l) => l.endsWith(".drv")),
  );

  const [app, multi, structured, escapes, , srcFlat, srcDir] = drvs.map((p): Derivation =>
    parseDerivation(readFileSync(p, "utf8")),
  );
  assert.deepEqual(
    multi?.outputs.map(([n, o]) => [n, o.kind]),
    [
      ["dev", "inputAddressed"],
      ["doc", "inputAddressed"],
      ["out", "inputAddressed"],
    ],
  );
  const flat = srcFlat?.outputs[0]?.[1];
  assert.equal(flat?.kind, "caFixed");
  assert.ok(flat?.kind === "caFixed" && flat.method === "flat" && flat.hashAlgo === "sha256");
  const rec = srcDir?.outputs[0]?.[1];
  assert.ok(rec?.kind === "caFixed" && rec.method === "nar");
  assert.deepEqual(fetchUrls(srcFlat as Derivation), ["https://example.org/hello-src.txt"]);
  assert.deepEqual(fetchUrls(srcDir as Derivation), [
    "https://a.example/x.tar",
    "https://b.example/x.tar",
  ]);
  assert.equal(app?.inputDrvs.length, 2, "libB and srcDir");
  assert.ok(app?.inputSrcs.some((s) => s.endsWith("-input.txt")));
  const sa = structuredAttrs(structured as Derivation);
  assert.deepEqual(sa?.nested, { list: [1, 2, "three"], flag: true });
  assert.equal(sa?.greeting, 'hi "there"\n\ttabbed\\');
  assert.equal(
    escapes?.env.find(([k]) => k === "weird")?.[1],
    'line1\nline2\r\t"quoted" back\\slash',
  );
});

test("content-addressed kinds: floating, deferred, impure (real Nix), and text hashing", () => {
  const features = "ca-derivations impure-derivations";
  const file = `${FIXTURES}/ca.nix`;
  const drvs = ["floating", "deferred", "impure"].map((a) =>
    run("nix-instantiate", ["--extra-experimental-features", features, file, "-A", a]).trim(),
  );
  roundTripAndCompare(drvs, features);
  const kinds = drvs.map((p) => parseDerivation(readFileSync(p, "utf8")).outputs[0]?.[1].kind);
  assert.deepEqual(kinds, ["caFloating", "deferred", "impure"]);
  // Nix 2.8 cannot evaluate outputHashMode = "text"; newer Nix writes it as text:sha256.
  const text = readFileSync(drvs[0] as string, "utf8").replace('"r:sha256"', '"text:sha256"');
  const drv = parseDerivation(text);
  assert.deepEqual(drv.outputs[0]?.[1], { kind: "caFloating", method: "text", hashAlgo: "sha256" });
  assert.equal(unparseDerivation(drv), text);
});

test("malformed and truncated derivations fail with a clear MALFORMED_DERIVATION error", () => {
  const text = readFileSync(instantiate("app"), "utf8");
  // Every proper prefix of a real .drv is truncated input: each must be refused.
  for (let i = 0; i < text.length; i += 7) {
    assert.throws(
      () => parseDerivation(text.slice(0, i), "x.drv"),
      (e) =>
        e instanceof NixError &&
        e.code === "MALFORMED_DERIVATION" &&
        e.message.startsWith("x.drv: expected"),
    );
  }
  const bad: [string, RegExp][] = [
    ["", /expected 'Derive\('/],
    ["garbage", /expected 'Derive\('/],
    [text + "x", /expected end of input/],
    [text.replace('"/nix/store', '"nix/store'), /absolute path/],
    ['Derive([("out","/nix/store/x","md6","00")],[],[],"s","b",[],[])', /known hash algorithm/],
    ['Derive([("out","","sha256","00")],[],[],"s","b",[],[])', /a path for fixed output/],
    ['Derive([("out","/p","","00")],[],[],"s","b",[],[])', /no hash for output/],
    ['Derive([],[],[],"s\\', /closing '"'/],
    ['Derive([],[],[],"s\\n', /closing '"'/],
  ];
  for (const [input, msg] of bad)
    assert.throws(() => parseDerivation(input), { code: "MALFORMED_DERIVATION", message: msg });
  assert.throws(() => parseDerivation('DrvWithVersion("xp-dyn-drv",[])'), {
    code: "UNSUPPORTED_DERIVATION",
  });
});
