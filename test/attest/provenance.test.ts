import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import {
  buildProvenance,
  gatherBuildFacts,
  NIX_DERIVATION_BUILD_TYPE,
  serializeStatement,
  SLSA_PROVENANCE_V1,
  STATEMENT_TYPE,
  type BuildHost,
  type ResourceDescriptor,
} from "../../src/attest/index.js";
import { parseNixHash } from "../../src/nix/index.js";
import { LocalBuildHost } from "../../src/system/build-host.js";
import { NixCliStore } from "../../src/system/nix-cli.js";
import { NixDbStore } from "../../src/system/nix-db.js";
import {
  build,
  drvOutputs,
  instantiate,
  nixPathInfo,
  run,
  showDerivations,
  useTestNix,
} from "../helpers/nix.js";

useTestNix();

const options = {
  builderId: "https://provenix.dev/builders/test/v1",
  provenixVersion: "0.0.0-test",
};

function narSha256(path: string): string {
  return parseNixHash(run("nix-store", ["--query", "--hash", path]).trim()).hex;
}

test("provenance of a real build with a chain of inputs, fixed-output sources and a source file", async () => {
  build("app");
  const drvPath = instantiate("app");
  const outs = drvOutputs(drvPath);
  const host = new LocalBuildHost();
  const db = new NixDbStore();
  const facts = await gatherBuildFacts(db, host, drvPath, options);
  const st = buildProvenance(facts);

  assert.equal(st._type, STATEMENT_TYPE);
  assert.equal(st.predicateType, SLSA_PROVENANCE_V1);
  assert.deepEqual(st.subject, [
    {
      name: outs.out,
      digest: { sha256: narSha256(outs.out as string) },
      annotations: { "nix.output": "out" },
    },
  ]);

  const def = st.predicate?.buildDefinition;
  assert.equal(def?.buildType, NIX_DERIVATION_BUILD_TYPE);
  assert.deepEqual(def?.externalParameters, { derivation: drvPath, outputs: ["out"] });
  assert.equal(
    def?.internalParameters?.nixVersion,
    run("nix", ["--version"]).trim().split(" ").at(-1),
  );
  assert.equal(
    def?.internalParameters?.system,
    run("nix", ["eval", "--raw", "--impure", "--expr", "builtins.currentSystem"]),
  );
  assert.equal(def?.internalParameters?.settings.sandbox, true); // the tests build sandboxed
  assert.deepEqual(def?.internalParameters?.settings.substituters, []);

  // resolvedDependencies: the .drv, every input source, every input-derivation output used.
  const deps = new Map(
    (def?.resolvedDependencies ?? []).map((d) => [d.name, d] as [string, ResourceDescriptor]),
  );
  const drvJson = showDerivations([drvPath]).get(drvPath);
  const expectedInputs = [
    ...(drvJson?.inputSrcs ?? []),
    ...Object.entries(drvJson?.inputDrvs ?? {}).flatMap(([d, names]) =>
      names.map((n) => drvOutputs(d)[n] as string),
    ),
  ];
  assert.deepEqual([...deps.keys()].sort(), [drvPath, ...expectedInputs].sort());
  for (const p of [drvPath, ...expectedInputs])
    assert.equal(deps.get(p)?.digest?.sha256, narSha256(p), p);
  assert.equal(deps.get(drvPath)?.annotations?.["nix.kind"], "derivation");

  const srcDirDrv = instantiate("srcDir");
  const srcDir = deps.get(drvOutputs(srcDirDrv).out as string);
  assert.equal(srcDir?.downloadLocation, "https://a.example/x.tar");
  assert.deepEqual(srcDir?.annotations, {
    "nix.kind": "output",
    "nix.derivation": srcDirDrv,
    "nix.output": "out",
    "nix.fixedOutput": {
      method: "nar",
      hashAlgo: "sha256",
      hash: parseNixHash("sha256-ozP040WK04tQiWWaKGAH+0PNMZxVm7Eq8OIkEA3Zu58=").hex,
      urls: ["https://a.example/x.tar", "https://b.example/x.tar"],
    },
  });
  const inputTxt = [...deps.values()].find((d) => d.name?.endsWith("-input.txt"));
  assert.equal(inputTxt?.annotations?.["nix.kind"], "source");

  // runDetails: builder, timing from the registration time and the build log.
  const run_ = st.predicate?.runDetails;
  assert.equal(run_?.builder.id, options.builderId);
  const info = nixPathInfo(outs.out as string);
  assert.equal(
    run_?.metadata?.finishedOn,
    new Date((info.registrationTime ?? 0) * 1000).toISOString().replace(".000", ""),
  );
  const logFile = `/nix/var/log/nix/drvs/${drvPath.slice(11, 13)}/${drvPath.slice(13)}.bz2`;
  assert.deepEqual(run_?.byproducts, [
    {
      name: "build-log",
      uri: "file://" + logFile,
      digest: { sha256: createHash("sha256").update(readFileSync(logFile)).digest("hex") },
      mediaType: "application/x-bzip2",
    },
  ]);
  assert.ok(
    run_?.metadata?.startedOn && run_.metadata.startedOn <= (run_.metadata.finishedOn ?? ""),
  );

  // Deterministic: the same inputs give the same bytes, through either store adapter.
  const again = buildProvenance(
    await gatherBuildFacts(new NixCliStore(), new LocalBuildHost(), drvPath, options),
  );
  assert.ok(serializeStatement(again).equals(serializeStatement(st)));
  db.close();
});

test("every output of a multi-output derivation is a subject; structured attrs build too", async () => {
  build("multi");
  const drvPath = instantiate("multi");
  const outs = drvOutputs(drvPath);
  const host: BuildHost = {
    nixInfo: () => Promise.resolve({ version: "2.8.0", settings: {} }),
    buildLog: () => Promise.resolve(undefined),
  };
  const st = buildProvenance(await gatherBuildFacts(new NixCliStore(), host, drvPath, options));
  assert.deepEqual(
    st.subject.map((s) => [s.annotations?.["nix.output"], s.name, s.digest?.sha256]),
    ["doc", "dev", "out"]
      .map((n) => [n, outs[n], narSha256(outs[n] as string)])
      .sort((a, b) => String(a[1]).localeCompare(String(b[1]))),
  );
  assert.equal(st.predicate?.runDetails.byproducts, undefined, "no log, no byproduct");

  build("structured");
  const sd = instantiate("structured");
  const s2 = buildProvenance(
    await gatherBuildFacts(new NixCliStore(), host, sd, {
      ...options,
      installable: "./builds.nix",
      attribute: "structured",
    }),
  );
  assert.deepEqual(s2.predicate?.buildDefinition.externalParameters, {
    derivation: sd,
    installable: "./builds.nix",
    attribute: "structured",
    outputs: ["out"],
  });
});

test("an output that is not built, or an unknown output name, is a NOT_BUILT error", async () => {
  const drvPath = instantiate("app", `unbuilt-${Date.now()}`);
  await assert.rejects(
    gatherBuildFacts(new NixCliStore(), new LocalBuildHost(), drvPath, options),
    {
      code: "NOT_BUILT",
      message: /output 'out' of .* is not built/,
    },
  );
  build("multi");
  await assert.rejects(
    gatherBuildFacts(new NixCliStore(), new LocalBuildHost(), instantiate("multi"), {
      ...options,
      outputs: ["bin"],
    }),
    {
      code: "NOT_BUILT",
      message: /has no output 'bin'/,
    },
  );
});

test("build logs: hashed whole however long, .bz2 before plain text, none when absent, an error when unreadable", async () => {
  const dir = mkdtempSync(join(tmpdir(), "provenix-logs-"));
  try {
    const host = new LocalBuildHost(dir);
    const drv = (name: string): string => `/nix/store/${name}${"0".repeat(30)}-x.drv`;
    const file = (name: string, suffix: string): string =>
      join(dir, "drvs", name.slice(0, 2), `${name.slice(2)}${"0".repeat(30)}-x.drv${suffix}`);
    mkdirSync(join(dir, "drvs", "aa"), { recursive: true });
    mkdirSync(join(dir, "drvs", "bb"), { recursive: true });
    mkdirSync(join(dir, "drvs", "cc"), { recursive: true });

    // Longer than the reader's chunk, with different bytes in every part.
    const long = Buffer.from(Array.from({ length: 700_000 }, (_, i) => (i * 7919) % 251));
    writeFileSync(file("aa", ".bz2"), long);
    writeFileSync(file("aa", ""), "the plain log, shadowed by the .bz2");
    const a = await host.buildLog(drv("aa"));
    assert.equal(a?.sha256, createHash("sha256").update(long).digest("hex"));
    assert.equal(a?.mediaType, "application/x-bzip2");
    assert.equal(a?.uri, "file://" + file("aa", ".bz2"));

    writeFileSync(file("bb", ""), "plain text log\n");
    const b = await host.buildLog(drv("bb"));
    assert.equal(b?.mediaType, "text/plain");
    assert.equal(b?.sha256, createHash("sha256").update("plain text log\n").digest("hex"));

    assert.equal(await host.buildLog(drv("dd")), undefined, "no log");

    // There but unreadable (a directory where the file should be): not "no log".
    mkdirSync(file("cc", ".bz2"));
    await assert.rejects(host.buildLog(drv("cc")), {
      code: "NIX_LOG_UNREADABLE",
      message: `cannot read the build log ${file("cc", ".bz2")}: EISDIR`,
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
