import assert from "node:assert/strict";
import { chmodSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { cliHome, provenix, type CliResult } from "../helpers/cli.js";
import {
  build,
  drvOutputs,
  instantiate,
  run,
  showDerivations,
  tempDir,
  useTestNix,
} from "../helpers/nix.js";
import { cycloneDxErrors, spdxErrors } from "../helpers/schemas.js";
import { sigstoreVerify } from "../helpers/sigstore.js";
import { parsePublicKey } from "../../src/sign/index.js";

useTestNix();

interface Cdx {
  components: {
    "bom-ref": string;
    name: string;
    version?: string;
    purl: string;
    hashes?: { content: string }[];
    externalReferences?: { url: string; type: string }[];
    properties: { name: string; value: string }[];
    description?: string;
    licenses?: { license: { name: string } }[];
  }[];
  dependencies?: { ref: string; dependsOn?: string[] }[];
}
interface Spdx {
  packages: {
    SPDXID: string;
    name: string;
    comment: string;
    checksums?: { checksumValue: string }[];
    downloadLocation: string;
  }[];
  relationships: { spdxElementId: string; relationshipType: string; relatedSpdxElement: string }[];
}

function ok(r: CliResult): string {
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

const lines = (s: string) =>
  s
    .split("\n")
    .filter((l) => l !== "")
    .sort();

test("CycloneDX 1.5/1.6/1.7 and SPDX 2.3 documents validate against the official schemas, for every closure kind", async () => {
  const env = cliHome();
  const [app] = build("app");
  for (const closure of ["runtime", "build", "both"]) {
    for (const spec of ["1.5", "1.6", "1.7"] as const) {
      const doc = ok(provenix(["sbom", "--closure", closure, "--spec", spec, app as string], env));
      assert.equal(await cycloneDxErrors(doc, spec), null, `CycloneDX ${spec} ${closure}`);
    }
    const spdx = ok(
      provenix(["sbom", "--format", "spdx", "--closure", closure, app as string], env),
    );
    assert.equal(spdxErrors(spdx), null, `SPDX ${closure}`);
  }
  // The validators do reject a broken document: the test can fail.
  const bad = JSON.parse(ok(provenix(["sbom", app as string], env))) as {
    components: { type: string }[];
  };
  (bad.components[0] as { type: string }).type = "not-a-type";
  assert.notEqual(await cycloneDxErrors(JSON.stringify(bad), "1.6"), null);
  assert.notEqual(spdxErrors(JSON.stringify({ spdxVersion: "SPDX-2.3" })), null);
});

test("the component set equals nix-store -qR, and edges equal nix-store --references / the .drv inputs", () => {
  const env = cliHome();
  const [app] = build("app");
  const drv = instantiate("app");
  const runtime = JSON.parse(ok(provenix(["sbom", app as string], env))) as Cdx;
  assert.deepEqual(
    runtime.components.map((c) => c["bom-ref"]).sort(),
    lines(run("nix-store", ["-qR", app as string])),
  );
  for (const d of runtime.dependencies ?? []) {
    const refs = lines(run("nix-store", ["--query", "--references", d.ref])).filter(
      (r) => r !== d.ref,
    );
    assert.deepEqual([...(d.dependsOn ?? [])].sort(), refs, d.ref);
  }
  const build_ = JSON.parse(
    ok(provenix(["sbom", "--closure", "build", app as string], env)),
  ) as Cdx;
  assert.deepEqual(
    build_.components.map((c) => c["bom-ref"]).sort(),
    lines(run("nix-store", ["-qR", drv])),
  );
  const drvJson = showDerivations([drv]).get(drv);
  const appDeps = build_.dependencies?.find((d) => d.ref === drv)?.dependsOn ?? [];
  assert.deepEqual(
    [...appDeps].sort(),
    [...(drvJson?.inputSrcs ?? []), ...Object.keys(drvJson?.inputDrvs ?? {})].sort(),
  );

  const both = JSON.parse(ok(provenix(["sbom", "--closure", "both", app as string], env))) as Cdx;
  const union = new Set([
    ...lines(run("nix-store", ["-qR", app as string])),
    ...lines(run("nix-store", ["-qR", drv])),
  ]);
  assert.deepEqual(both.components.map((c) => c["bom-ref"]).sort(), [...union].sort());
  assert.ok(
    both.dependencies?.find((d) => d.ref === app)?.dependsOn?.includes(drv),
    "output depends on its derivation",
  );

  // SPDX carries the same packages and edges.
  const spdx = JSON.parse(ok(provenix(["sbom", "--format", "spdx", app as string], env))) as Spdx;
  assert.equal(spdx.packages.length, runtime.components.length);
  const edges = spdx.relationships.filter((r) => r.relationshipType === "DEPENDS_ON").length;
  assert.equal(
    edges,
    (runtime.dependencies ?? []).reduce((n, d) => n + (d.dependsOn?.length ?? 0), 0),
  );
});

test("components carry name, version, purl, NAR sha256, derivation, and fixed-output sources with URLs and hashes", () => {
  const env = cliHome();
  const [app] = build("app");
  const doc = JSON.parse(ok(provenix(["sbom", "--closure", "both", app as string], env))) as Cdx;
  const byRef = new Map(doc.components.map((c) => [c["bom-ref"], c]));
  const appC = byRef.get(app as string);
  assert.equal(appC?.name, "app");
  assert.equal(appC?.version, "3.0");
  assert.equal(appC?.purl, "pkg:nix/app@3.0");
  assert.equal(
    appC?.hashes?.[0]?.content,
    run("nix", ["hash", "path", "--base16", "--type", "sha256", app as string]).trim(),
  );
  assert.ok(
    appC?.properties.some((p) => p.name === "nix:drv_path" && p.value === instantiate("app")),
  );
  const srcDir = byRef.get(instantiate("srcDir"));
  assert.deepEqual(
    srcDir?.externalReferences?.map((r) => [r.type, r.url]),
    [
      ["distribution", "https://a.example/x.tar"],
      ["distribution", "https://b.example/x.tar"],
    ],
  );
  assert.ok(
    srcDir?.properties.some(
      (p) => p.name === "nix:fixed_output_hash" && /^nar:sha256:[0-9a-f]{64}$/.test(p.value),
    ),
  );
  const srcOut = byRef.get(drvOutputs(instantiate("srcFlat")).out as string);
  assert.equal(
    srcOut,
    undefined,
    "srcFlat's output is not in app's runtime closure (only copied from)",
  );
});

test("output is byte-identical across runs; --timestamp is the only way to add a time", () => {
  const env = cliHome();
  const [app] = build("app");
  for (const format of ["cyclonedx", "spdx"]) {
    for (const closure of ["runtime", "build"]) {
      const a = ok(
        provenix(["sbom", "--format", format, "--closure", closure, app as string], env),
      );
      const b = ok(
        provenix(["sbom", "--format", format, "--closure", closure, app as string], env),
      );
      assert.equal(a, b, `${format} ${closure}`);
    }
  }
  assert.doesNotMatch(ok(provenix(["sbom", app as string], env)), /"timestamp"|serialNumber/);

  // -o writes the same bytes into place, and leaves nothing else behind.
  const dir = tempDir();
  const file = join(dir, "sbom.json");
  ok(provenix(["sbom", "--closure", "both", app as string, "-o", file], env));
  assert.equal(
    readFileSync(file, "utf8"),
    ok(provenix(["sbom", "--closure", "both", app as string], env)),
  );
  assert.deepEqual(readdirSync(dir), ["sbom.json"]);
  assert.match(
    ok(provenix(["sbom", "--timestamp", "2026-01-02T03:04:05Z", app as string], env)),
    /"timestamp": "2026-01-02T03:04:05.000Z"/,
  );
});

test("metadata from a nix-env --meta JSON file is used; absent metadata is marked, not invented", async () => {
  const env = cliHome();
  const dir = tempDir();
  const [app] = build("app");
  const meta = join(dir, "meta.json");
  writeFileSync(
    meta,
    JSON.stringify({
      app: {
        name: "app-3.0",
        pname: "app",
        version: "3.0",
        meta: {
          description: "The app",
          homepage: "https://app.example",
          license: [{ spdxId: "MIT", fullName: "MIT License" }],
        },
      },
    }),
  );
  const text = ok(provenix(["sbom", "--meta", meta, app as string], env));
  assert.equal(await cycloneDxErrors(text, "1.6"), null);
  const doc = JSON.parse(text) as Cdx;
  const appC = doc.components.find((c) => c["bom-ref"] === app);
  assert.equal(appC?.description, "The app");
  assert.deepEqual(
    appC?.licenses?.map((l) => l.license.name),
    ["MIT"],
  );
  assert.ok(!appC?.properties.some((p) => p.name === "provenix:meta"));
  const libb = doc.components.find((c) => c.name === "libb");
  assert.ok(libb?.properties.some((p) => p.name === "provenix:meta" && p.value === "unavailable"));
  assert.equal(libb?.description, undefined);
  const spdx = ok(provenix(["sbom", "--format", "spdx", "--meta", meta, app as string], env));
  assert.equal(spdxErrors(spdx), null);
});

test("bad input: outside the store, not built, a garbage-collected deriver, a damaged input .drv", () => {
  const env = cliHome();
  let r = provenix(["sbom", "/etc/hostname"], env);
  assert.equal(r.code, 3);
  assert.match(r.stderr, /^provenix: .*outside the Nix store \/nix\/store\n$/);
  r = provenix(["sbom", instantiate("app", `sbom-unbuilt-${Date.now()}`)], env);
  assert.equal(r.code, 3);
  assert.match(r.stderr, /is not built: a runtime SBOM needs its outputs/);
  r = provenix(["sbom", "--closure", "sideways", "/nix/store/x"], env);
  assert.equal(r.code, 2);
  const [built] = build("app");
  r = provenix(["sbom", built as string, "-o", "/nonexistent-dir/sbom.json"], env);
  assert.equal(r.code, 2);
  assert.equal(r.stderr, "provenix: cannot write /nonexistent-dir/sbom.json: ENOENT\n");
  // A target that fails part-way leaves no file, not even a partial one.
  const dir = tempDir();
  r = provenix(["sbom", "/etc/hostname", "-o", join(dir, "x.json")], env);
  assert.equal(r.code, 3);
  assert.deepEqual(readdirSync(dir), []);

  // The deriver of an output is garbage-collected: the component says so.
  const salt = `sbom-gc-${Date.now()}`;
  const [out] = build("escapes", salt);
  const drv = instantiate("escapes", salt);
  // keep-derivations (on by default) keeps the .drv of a live output; this is what a GC without it does.
  run("nix-store", ["--delete", "--option", "keep-derivations", "false", drv]);
  const doc = JSON.parse(ok(provenix(["sbom", out as string], env))) as Cdx;
  const c = doc.components.find((x) => x["bom-ref"] === out);
  assert.ok(
    c?.properties.some(
      (p) => p.name === "provenix:unknown" && /deriver .* is not available/.test(p.value),
    ),
  );

  // An input .drv that cannot be read becomes an explicit unknown entry in a build SBOM.
  const salt2 = `sbom-damaged-${Date.now()}`;
  const top = instantiate("libB", salt2);
  const input = instantiate("libA", salt2);
  const text = readFileSync(input, "utf8");
  chmodSync(input, 0o644);
  writeFileSync(input, text.slice(0, 40));
  try {
    const b = JSON.parse(ok(provenix(["sbom", "--closure", "build", top], env))) as Cdx;
    const damaged = b.components.find((x) => x["bom-ref"] === input);
    assert.ok(
      damaged?.properties.some(
        (p) => p.name === "provenix:unknown" && /not available/.test(p.value),
      ),
    );
  } finally {
    writeFileSync(input, text);
    chmodSync(input, 0o444);
  }
});

test("attest --sbom signs the SBOM as an in-toto statement, stored and exportable", async () => {
  const env = cliHome();
  const dir = tempDir();
  const key = JSON.parse(ok(provenix(["keygen", "--json"], env))) as { public: string };
  const [app] = build("app");
  const results = JSON.parse(
    ok(provenix(["attest", "--json", "--sbom", "spdx", app as string], env)),
  ) as { predicateType: string }[];
  assert.deepEqual(
    results.map((r) => r.predicateType),
    ["https://slsa.dev/provenance/v1", "https://spdx.dev/Document"],
  );
  ok(provenix(["attest", "--sbom", "cyclonedx", "--closure", "build", app as string], env));
  const file = join(dir, "sbom.sigstore.json");
  ok(
    provenix(
      ["export", "--predicate-type", "https://cyclonedx.org/bom", app as string, "-o", file],
      env,
    ),
  );
  sigstoreVerify(readFileSync(file), parsePublicKey(key.public));
  const v = ok(provenix(["verify", file], env));
  assert.match(v, /^PASS /);
  const bundle = JSON.parse(readFileSync(file, "utf8")) as { dsseEnvelope: { payload: string } };
  const statement = JSON.parse(Buffer.from(bundle.dsseEnvelope.payload, "base64").toString()) as {
    predicateType: string;
    subject: { name: string }[];
    predicate: string;
  };
  assert.equal(statement.predicateType, "https://cyclonedx.org/bom");
  assert.deepEqual(
    statement.subject.map((s) => s.name),
    [app],
  );
  assert.equal(await cycloneDxErrors(JSON.stringify(statement.predicate), "1.6"), null);
});
