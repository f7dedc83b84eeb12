// Derivation JSON in every shape Nix has printed (2.8/2.22 and Lix, 2.23-2.31, v3,
// v4), read by one tolerant reader, on Nix's and Lix's own test-suite data.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { derivationJsonShape, NixError, parseDerivationJson } from "../../src/nix/index.js";
import { ROOT } from "../helpers/nix.js";

const REF = join(ROOT, "..", "shared", "reference", "nix-json");
const read = (...p: string[]): Record<string, unknown> =>
  JSON.parse(readFileSync(join(REF, ...p), "utf8")) as Record<string, unknown>;

const DRV_BASE = "c015dhfh5l0lp6wxyvdn7bmwhbbr6hr9-drv-name.drv";
const DRV = `/nix/store/${DRV_BASE}`;

/** One output sample of a Nix version, wrapped as that version's command prints a derivation. */
function wrapped(version: string, output: Record<string, unknown>): unknown {
  const drv = { outputs: { "output-name": output }, env: {}, args: [], builder: "b", system: "s" };
  switch (version) {
    case "nixos-nix/2.32.0":
      return { [DRV_BASE]: { ...drv, version: 3, inputSrcs: [], inputDrvs: {} } };
    case "nixos-nix/master":
      return {
        version: 4,
        derivations: { [DRV_BASE]: { ...drv, version: 4, inputs: { srcs: [], drvs: {} } } },
      };
    default:
      return { [DRV]: { ...drv, inputSrcs: [], inputDrvs: {} } };
  }
}

const VERSIONS = [
  "nixos-nix/2.22.0",
  "nixos-nix/2.31.0",
  "nixos-nix/2.32.0",
  "nixos-nix/master",
  "lix",
];
const OUTPUTS = [
  "output-inputAddressed",
  "output-caFixedNAR",
  "output-caFixedFlat",
  "output-caFixedText",
  "output-caFloating",
  "output-deferred",
  "output-impure",
];

test("derivation outputs of every Nix version's test data read the same as 2.22's (fixed-output paths computed where v3 and v4 leave them out)", () => {
  let compared = 0;
  for (const name of OUTPUTS) {
    const reference = parseDerivationJson(
      wrapped("nixos-nix/2.22.0", read("nixos-nix/2.22.0", "derivation", `${name}.json`)),
      "/nix/store",
    ).get(DRV)?.outputs["output-name"];
    assert.ok(reference, name);
    for (const v of VERSIONS.slice(1)) {
      const file = join(REF, v, "derivation", `${name}.json`);
      if (!existsSync(file)) continue; // Lix's suite has only some of them
      const got = parseDerivationJson(
        wrapped(v, read(v, "derivation", `${name}.json`)),
        "/nix/store",
      ).get(DRV)?.outputs["output-name"];
      assert.deepEqual(got, reference, `${name} of ${v}`);
      compared++;
    }
  }
  assert.ok(compared >= 20, `compared ${compared}`);
});

test("whole derivations: 2.22, v3, v4 and Lix give one form with full paths; shapes detected", () => {
  const docs: [string, unknown][] = [
    [
      "2.22",
      {
        "/nix/store/x0000000000000000000000000000000-simple-derivation.drv": read(
          "nixos-nix/2.22.0",
          "derivation",
          "simple.json",
        ),
      },
    ],
    [
      "lix",
      {
        "/nix/store/x0000000000000000000000000000000-simple-derivation.drv": read(
          "lix",
          "derivation",
          "simple.json",
        ),
      },
    ],
    [
      "v3",
      {
        "x0000000000000000000000000000000-simple-derivation.drv": read(
          "nixos-nix/2.32.0",
          "derivation",
          "simple-derivation.json",
        ),
      },
    ],
    [
      "v4",
      {
        version: 4,
        derivations: {
          "x0000000000000000000000000000000-simple-derivation.drv": read(
            "nixos-nix/master",
            "derivation",
            "simple-derivation.json",
          ),
        },
      },
    ],
  ];
  const forms = docs.map(([what, doc]) => {
    const m = parseDerivationJson(doc, "/nix/store");
    const d = m.get("/nix/store/x0000000000000000000000000000000-simple-derivation.drv");
    assert.ok(d, what);
    return d;
  });
  for (const f of forms.slice(1)) assert.deepEqual(f, forms[0]);
  assert.deepEqual(forms[0]?.inputSrcs, ["/nix/store/c015dhfh5l0lp6wxyvdn7bmwhbbr6hr9-dep1"]);
  assert.deepEqual(forms[0]?.inputDrvs, {
    "/nix/store/c015dhfh5l0lp6wxyvdn7bmwhbbr6hr9-dep2.drv": ["cat", "dog"],
  });
  assert.deepEqual(
    [
      read("nixos-nix/2.22.0", "derivation", "simple.json"),
      read("nixos-nix/2.31.0", "derivation", "output-caFixedNAR.json"),
      read("nixos-nix/2.32.0", "derivation", "simple-derivation.json"),
      read("nixos-nix/master", "derivation", "simple-derivation.json"),
    ].map((d, i) =>
      i === 1 ? derivationJsonShape({ outputs: { out: d } }) : derivationJsonShape(d),
    ),
    ["2.8", "2.23", "v3", "v4"],
  );
  for (const bad of [
    "x",
    { version: 5, derivations: {} },
    { [DRV]: { outputs: { out: { method: "git2" } } } },
  ]) {
    assert.throws(() => parseDerivationJson(bad, "/nix/store"), NixError, JSON.stringify(bad));
  }
});
