// Golden files: the provenance statement and signed bundle for a fixture build,
// produced by this code (PROVENIX_UPDATE_GOLDEN=1 rewrites them), and checked by
// independent means: the official sigstore-js verifier, Python's securesystemslib,
// and real Nix for every digest and path in them.
import assert from "node:assert/strict";
import { createHash, createPrivateKey, createPublicKey } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import {
  buildProvenance,
  gatherBuildFacts,
  IN_TOTO_PAYLOAD_TYPE,
  serializeStatement,
  SLSA_PROVENANCE_V1,
  type BuildHost,
  type SlsaProvenance,
  type Statement,
} from "../../src/attest/index.js";
import { parseNixHash } from "../../src/nix/index.js";
import { parseNixPublicKey, parseNixSecretKey, signBundle } from "../../src/sign/index.js";
import { NixDbStore } from "../../src/system/nix-db.js";
import { verifyAttestation } from "../../src/verify/index.js";
import { build, drvOutputs, FIXTURES, instantiate, run, useTestNix } from "../helpers/nix.js";
import { securesystemslibVerifies } from "../helpers/securesystemslib.js";
import { sigstoreVerify } from "../helpers/sigstore.js";

useTestNix();

const GOLDEN = join(FIXTURES, "golden");
const update = process.env.PROVENIX_UPDATE_GOLDEN === "1";

/** A fixed test key (Ed25519 signatures are deterministic, so the bundle bytes are too). */
function goldenKey(): { secret: string; public: string } {
  const seed = createHash("sha256").update("provenix golden test key, not a secret").digest();
  const priv = createPrivateKey({
    key: Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), seed]),
    format: "der",
    type: "pkcs8",
  });
  const pub = createPublicKey(priv).export({ format: "der", type: "spki" }).subarray(-32);
  return {
    secret: `golden-test-1:${Buffer.concat([seed, pub]).toString("base64")}`,
    public: `golden-test-1:${pub.toString("base64")}`,
  };
}

/** Machine- and time-dependent facts, fixed so the golden files are the same everywhere. */
const fixedHost: BuildHost = {
  nixInfo: () =>
    Promise.resolve({
      version: "2.8.0",
      settings: { sandbox: false, substituters: [] },
      settingsReadOn: new Date("2026-01-02T03:09:07Z"),
    }),
  buildLog: () =>
    Promise.resolve({
      uri: "file:///nix/var/log/nix/drvs/golden.drv.bz2",
      sha256: createHash("sha256").update("golden log").digest("hex"),
      mediaType: "application/x-bzip2",
      startedOn: new Date("2026-01-02T03:04:05Z"),
    }),
};

function golden(name: string, produced: Buffer): Buffer {
  const file = join(GOLDEN, name);
  if (update) writeFileSync(file, produced);
  assert.ok(existsSync(file), `${file} is missing: run the tests with PROVENIX_UPDATE_GOLDEN=1`);
  return readFileSync(file);
}

test("golden provenance and bundle for the app fixture, checked by sigstore-js, securesystemslib and Nix", async () => {
  build("app");
  const drvPath = instantiate("app");
  const db = new NixDbStore();
  const facts = await gatherBuildFacts(db, fixedHost, drvPath, {
    builderId: "https://provenix.dev/builders/golden/v1",
    provenixVersion: "0.0.0-golden",
    installable: "test/fixtures/builds.nix",
    attribute: "app",
  });
  db.close();
  const statement = buildProvenance({ ...facts, finishedOn: new Date("2026-01-02T03:09:05Z") });
  const key = goldenKey();
  const bundle = signBundle(
    serializeStatement(statement),
    IN_TOTO_PAYLOAD_TYPE,
    parseNixSecretKey(key.secret),
  );

  const goldenStatement = golden(
    "app.provenance.json",
    Buffer.from(JSON.stringify(statement, null, 2) + "\n"),
  );
  const goldenBundle = golden("app.sigstore.json", bundle);
  assert.deepEqual(
    JSON.parse(goldenStatement.toString()),
    statement,
    "statement differs from golden (PROVENIX_UPDATE_GOLDEN=1 to accept)",
  );
  assert.ok(
    goldenBundle.equals(bundle),
    "bundle bytes differ from golden (PROVENIX_UPDATE_GOLDEN=1 to accept)",
  );

  // Independent checks of the golden files themselves.
  const pub = parseNixPublicKey(key.public);
  sigstoreVerify(goldenBundle, pub);
  assert.equal(securesystemslibVerifies(goldenBundle, pub), true);
  const signed = JSON.parse(
    Buffer.from(
      (JSON.parse(goldenBundle.toString()) as { dsseEnvelope: { payload: string } }).dsseEnvelope
        .payload,
      "base64",
    ).toString(),
  ) as Statement<SlsaProvenance>;
  assert.deepEqual(signed, JSON.parse(goldenStatement.toString()));
  const narHash = (p: string) =>
    parseNixHash(run("nix-store", ["--query", "--hash", p]).trim()).hex;
  assert.equal(signed.predicate?.buildDefinition.externalParameters.derivation, drvPath);
  assert.deepEqual(
    signed.subject.map((s) => s.name),
    [drvOutputs(drvPath).out],
  );
  for (const rd of [
    ...signed.subject,
    ...(signed.predicate?.buildDefinition.resolvedDependencies ?? []),
  ]) {
    assert.equal(rd.digest?.sha256, narHash(rd.name as string), rd.name);
  }
});

test("bundles written before 0.2 (the key's name as DSSE keyid and hint) still verify", () => {
  // The golden bundle of provenix 0.1, kept as it was written: same statement and
  // signature as today's, only the keyid and hint differ.
  const old = readFileSync(join(GOLDEN, "app-v0.1-keyid.sigstore.json"));
  const json = JSON.parse(old.toString()) as {
    verificationMaterial: { publicKey: { hint: string } };
    dsseEnvelope: { signatures: { keyid: string }[] };
  };
  assert.equal(json.verificationMaterial.publicKey.hint, "golden-test-1");
  assert.equal(json.dsseEnvelope.signatures[0]?.keyid, "golden-test-1");
  const pub = parseNixPublicKey(goldenKey().public);
  const v = verifyAttestation(old, { trustedKeys: [pub], predicateType: SLSA_PROVENANCE_V1 });
  assert.equal(v.ok, true, v.reason);
  assert.equal(v.signer, pub);
});
