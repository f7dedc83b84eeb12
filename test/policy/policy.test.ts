// verify --policy over whole closures, VSAs, and the adversarial cases, on real builds.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import test from "node:test";
import {
  IN_TOTO_PAYLOAD_TYPE,
  SLSA_PROVENANCE_V1,
  serializeStatement,
  type Statement,
} from "../../src/attest/index.js";
import { VSA_V1, type VsaPredicate } from "../../src/policy/index.js";
import {
  generateKeyPair,
  parsePublicKey,
  parseSecretKey,
  signBundle,
  type Signer,
} from "../../src/sign/index.js";
import { AttestationStore } from "../../src/store/index.js";
import { cliHome, isOneLineError, provenix } from "../helpers/cli.js";
import { BUILDS, nixCmd, ROOT, run, tempDir, useTestNix } from "../helpers/nix.js";
import { sigstoreVerify } from "../helpers/sigstore.js";

useTestNix();
const SALT = `policy-${process.pid}-${Date.now()}`;

interface Home {
  env: NodeJS.ProcessEnv;
  pub: string;
  signer: Signer;
  dir: string;
}

function home(): Home {
  const env = cliHome();
  assert.equal(provenix(["keygen"], env).code, 0);
  const cfg = join(env.XDG_CONFIG_HOME ?? "", "provenix");
  return {
    env,
    pub: readFileSync(join(cfg, "signing.pub"), "utf8").trim(),
    signer: parseSecretKey(readFileSync(join(cfg, "signing.key"), "utf8")),
    dir: tempDir(),
  };
}

const storeOf = (h: Home) =>
  AttestationStore.open(join(h.env.XDG_DATA_HOME ?? "", "provenix", "attestations.db"));

function policyFile(h: Home, body: string, name = "policy.yaml"): string {
  const f = join(h.dir, name);
  writeFileSync(f, `apiVersion: provenix.dev/policy/v1\n${body}`);
  return f;
}

const trusting = (h: Home, extra = "") => `builders:\n  - keys: ["${h.pub}"]\n${extra}`;

/** Build the app fixture (salted) and attest every derivation of its build closure, but `skip`. */
function builtAndAttested(h: Home, salt: string, skip: string[] = []) {
  const app = run("nix-build", [
    BUILDS,
    "-A",
    "app",
    "--argstr",
    "salt",
    salt,
    "--no-out-link",
  ]).trim();
  const drv = run("nix-store", ["-q", "--deriver", app]).trim();
  const drvs = run("nix-store", ["-qR", drv])
    .split("\n")
    .filter((p) => p.endsWith(".drv") && !skip.some((s) => p.includes(s)));
  const r = provenix(["attest", ...drvs], h.env);
  assert.equal(r.code, 0, r.stderr);
  const out = (attr: string) =>
    run("nix-build", [BUILDS, "-A", attr, "--argstr", "salt", salt, "--no-out-link"]).trim();
  return { app, drv, libA: out("libA"), libB: out("libB") };
}

interface PolicyJson {
  ok: boolean;
  reason?: string;
  paths: { path: string; ok: boolean; basis?: string; reason?: string; root: boolean }[];
}

function verifyPolicy(h: Home, args: string[]): { code: number; out: PolicyJson; stderr: string } {
  const r = provenix(["verify", "--json", ...args], h.env);
  return { code: r.code, out: JSON.parse(r.stdout) as PolicyJson, stderr: r.stderr };
}

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

test("the schemas provenix documents (docs/schemas) are valid draft-07 JSON Schemas, strictly", async () => {
  const { Ajv } = await import("ajv");
  const addFormats = (await import("ajv-formats")).default as unknown as (a: object) => void;
  for (const name of ["policy-v1.schema.json", "reproducibility-v1.schema.json"]) {
    const ajv = new Ajv({ strict: true, strictRequired: false });
    addFormats(ajv);
    const schema = JSON.parse(readFileSync(join(ROOT, "docs", "schemas", name), "utf8")) as object;
    assert.equal(ajv.validateSchema(schema), true, `${name}: ${ajv.errorsText(ajv.errors)}`);
    ajv.compile(schema);
  }
  // The check can fail: a misspelt type is not a schema.
  const ajv = new Ajv({ strict: true });
  assert.equal(ajv.validateSchema({ type: "strnig" }), false);
});

test("a whole closure passes a policy: provenance for every build, sources vouched by it; a signed VSA that verify --vsa and sigstore-js accept", () => {
  const h = home();
  const { app } = builtAndAttested(h, `${SALT}-pass`);
  const policy = policyFile(h, trusting(h));
  const runtime = verifyPolicy(h, ["--policy", policy, "--closure", app]);
  assert.equal(runtime.code, 0, JSON.stringify(runtime.out));
  // Runtime closure as Nix reports it.
  const closure = run("nix-store", ["-qR", app]).split("\n").filter(Boolean).sort();
  assert.deepEqual(runtime.out.paths.map((p) => p.path).sort(), closure);

  const build = verifyPolicy(h, ["--policy", policy, "--closure", "build", app]);
  assert.equal(build.code, 0, JSON.stringify(build.out));
  const bases = build.out.paths.map((p) => p.basis).sort();
  assert.deepEqual(bases, [
    "provenance",
    "provenance",
    "provenance",
    "provenance",
    "provenance",
    "source",
  ]);
  const source = build.out.paths.find((p) => p.basis === "source");
  assert.match(source?.path ?? "", /-input\.txt$/);

  // The VSA: signed, stored, about the artifact, with the policy's digest and every input used.
  const vsaFile = join(h.dir, "vsa.json");
  const withVsa = provenix(
    ["verify", "--policy", policy, "--closure", "build", "--emit-vsa", vsaFile, app],
    h.env,
  );
  assert.equal(withVsa.code, 0, withVsa.stdout);
  const bundle = readFileSync(vsaFile);
  sigstoreVerify(bundle, parsePublicKey(h.pub));
  const envelope = (JSON.parse(bundle.toString()) as { dsseEnvelope: { payload: string } })
    .dsseEnvelope;
  const vsa = JSON.parse(
    Buffer.from(envelope.payload, "base64").toString(),
  ) as Statement<VsaPredicate>;
  assert.equal(vsa.predicateType, VSA_V1);
  // Nix's record of the NAR hash, converted by Nix's own nix-hash (2.8 and later).
  const nix32 = run("nix-store", ["--query", "--hash", app])
    .trim()
    .replace(/^sha256:/, "");
  const hex = run("nix-hash", ["--type", "sha256", "--to-base16", nix32]).trim();
  assert.deepEqual(vsa.subject, [{ name: app, digest: { sha256: hex } }]);
  const p = vsa.predicate!;
  assert.equal(p.verificationResult, "PASSED");
  assert.deepEqual(p.verifiedLevels, ["SLSA_BUILD_LEVEL_1"]);
  assert.equal(p.policy.digest?.sha256, sha256(readFileSync(policy)));
  assert.equal(p.resourceUri, `file://${app}`);
  assert.deepEqual(p.dependencyLevels, { SLSA_BUILD_LEVEL_0: 1, SLSA_BUILD_LEVEL_1: 4 });
  const store = storeOf(h);
  const all = new Set(
    store.find({ predicateType: SLSA_PROVENANCE_V1 }).map((a) => sha256(a.bundle)),
  );
  store.close();
  assert.equal(p.inputAttestations?.length, 5);
  for (const i of p.inputAttestations ?? [])
    assert.ok(all.has(i.digest.sha256 ?? ""), "a stored provenance");
  assert.ok(!Number.isNaN(Date.parse(p.timeVerified)));

  const ok = provenix(["verify", "--vsa", vsaFile, "--vsa-level", "1", app], h.env);
  assert.equal(ok.code, 0, ok.stdout);
  const level2 = provenix(["verify", "--vsa", vsaFile, "--vsa-level", "2", app], h.env);
  assert.equal(level2.code, 1);
  assert.match(
    level2.stdout,
    /verifiedLevels \["SLSA_BUILD_LEVEL_1"\] do not reach SLSA_BUILD_LEVEL_2/,
  );
  const other = provenix(
    ["verify", "--vsa", vsaFile, "--verifier-id", "https://other/verifier", app],
    h.env,
  );
  assert.equal(other.code, 1);
  assert.match(other.stdout, /verifier.id is '.*', expected 'https:\/\/other\/verifier'/);
  const uri = provenix(["verify", "--vsa", vsaFile, "--resource-uri", "oci://x/y", app], h.env);
  assert.match(uri.stdout, /resourceUri is 'file:\/\/.*', expected 'oci:\/\/x\/y'/);
});

test("substituted paths pass on a binary-cache signature the policy trusts (the one Nix accepted), and fail on any other", () => {
  const h = home();
  const cacheKey = join(h.dir, "sk");
  const cachePub = join(h.dir, "pk");
  run("nix-store", ["--generate-binary-cache-key", "cache-policy-1", cacheKey, cachePub]);
  const path = run("nix-build", [
    BUILDS,
    "-A",
    "libA",
    "--argstr",
    "salt",
    `${SALT}-subst`,
    "--no-out-link",
  ]).trim();
  const cache = `file://${join(h.dir, "cache")}`;
  nixCmd("copy", "--to", `${cache}?secret-key=${cacheKey}`, path);
  run("nix-store", ["--delete", path]);
  const pub = readFileSync(cachePub, "utf8").trim();
  // Nix itself checks the narinfo signature here, with the same key.
  nixCmd("copy", "--from", cache, path, "--option", "trusted-public-keys", pub);

  const good = verifyPolicy(h, [
    "--policy",
    policyFile(h, trusting(h, `substituters:\n  keys: ["${pub}"]\n`)),
    path,
  ]);
  assert.equal(good.code, 0, JSON.stringify(good.out));
  assert.equal(good.out.paths[0]?.basis, "substituted");

  const none = verifyPolicy(h, ["--policy", policyFile(h, trusting(h), "none.yaml"), path]);
  assert.equal(none.code, 1);
  assert.match(
    none.out.paths[0]?.reason ?? "",
    /substituted, signed by cache-policy-1, none of them a cache the policy trusts/,
  );
  // Same key name, other key: the signature must not verify.
  const impostor = `cache-policy-1:${generateKeyPair("nix", "x").public.trim().split(":")[1] ?? ""}`;
  const wrong = verifyPolicy(h, [
    "--policy",
    policyFile(h, trusting(h, `substituters:\n  keys: ["${impostor}"]\n`), "wrong.yaml"),
    path,
  ]);
  assert.equal(wrong.code, 1);
  assert.match(
    wrong.out.paths[0]?.reason ?? "",
    /the narinfo signature of .* by cache-policy-1 does not verify/,
  );
});

/** The provenance provenix stored for a path, as a statement. */
function storedProvenance(h: Home, path: string): Statement {
  const s = storeOf(h);
  const [a] = s.find({ subjectName: path, predicateType: SLSA_PROVENANCE_V1 });
  s.close();
  assert.ok(a);
  const env = (JSON.parse(a.bundle.toString()) as { dsseEnvelope: { payload: string } })
    .dsseEnvelope;
  return JSON.parse(Buffer.from(env.payload, "base64").toString()) as Statement;
}

/** A fresh home whose store holds only this bundle, indexed under `path`. */
function storeHolding(owner: Home, path: string, bundle: Buffer, sha: string): Home {
  const h = home();
  const s = storeOf(h);
  s.put({
    bundle,
    payload: Buffer.from("x"),
    keyid: owner.signer.publicKey.keyid,
    predicateType: SLSA_PROVENANCE_V1,
    subjects: [{ name: path, sha256: sha }],
  });
  s.close();
  return h;
}

test("adversarial: each forgery fails with its own reason", () => {
  const h = home();
  const { app, libA, libB } = builtAndAttested(h, `${SALT}-adv`);
  const good = storedProvenance(h, libA);
  const sha = good.subject[0]?.digest?.sha256 ?? "";
  const sign = (payload: Buffer, signer = h.signer, type = IN_TOTO_PAYLOAD_TYPE) =>
    signBundle(payload, type, signer);
  const policy = (x: Home, extra = "") => policyFile(x, trusting(h, extra));
  const stranger = parseSecretKey(generateKeyPair("nix", "stranger-1").secret);

  const forged = (mutate: (s: Statement) => void) => {
    const s = structuredClone(good);
    mutate(s);
    return serializeStatement(s);
  };
  const payloadTypeChanged = JSON.parse(sign(serializeStatement(good)).toString()) as {
    dsseEnvelope: { payloadType: string };
  };
  payloadTypeChanged.dsseEnvelope.payloadType = "application/json";
  const duplicate = Buffer.from(
    serializeStatement(good)
      .toString()
      .replace('"predicateType":', '"predicateType":"x","predicateType":'),
  );
  const cases: [string, Buffer, RegExp][] = [
    [
      "subject digest mismatch",
      sign(forged((s) => (s.subject[0]!.digest = { sha256: "1".repeat(64) }))),
      /subject digest mismatch for .*-liba-1\.0: attested sha256 1{64}, actual [0-9a-f]{64}/,
    ],
    [
      "untrusted key",
      sign(serializeStatement(good), stranger),
      /signature does not verify with any of 1 trusted key\(s\) \(signed as '[A-Za-z0-9+/]{43}='\)/,
    ],
    [
      "replayed for another path",
      sign(serializeStatement(storedProvenance(h, libB))),
      /attestation has no subject named .*-liba-1\.0/,
    ],
    [
      "payloadType changed",
      Buffer.from(JSON.stringify(payloadTypeChanged)),
      /payloadType is 'application\/json', expected 'application\/vnd\.in-toto\+json'/,
    ],
    [
      "duplicate JSON keys",
      sign(duplicate),
      /payload is not valid JSON: duplicate key "predicateType"/,
    ],
    [
      "unknown _type",
      sign(forged((s) => ((s as { _type: string })._type = "https://in-toto.io/Statement/v0.1"))),
      /statement _type is 'https:\/\/in-toto\.io\/Statement\/v0\.1'/,
    ],
  ];
  for (const [name, bundle, reason] of cases) {
    const x = storeHolding(h, libA, bundle, sha);
    const r = verifyPolicy(x, ["--policy", policy(x), libA]);
    assert.equal(r.code, 1, name);
    assert.match(r.out.paths[0]?.reason ?? "", reason, name);
  }

  // A policy-forbidden flake source, on the artifact's provenance.
  const evil = forged((s) => {
    const p = s.predicate as { buildDefinition: { resolvedDependencies: unknown[] } };
    p.buildDefinition.resolvedDependencies.push({
      name: "/nix/store/00000000000000000000000000000000-source",
      uri: "github:evil/repo/0123456789abcdef?narHash=x",
      digest: { sha256: "2".repeat(64) },
      annotations: { "nix.kind": "flake" },
    });
  });
  const x = storeHolding(h, libA, sign(evil), sha);
  const denied = verifyPolicy(x, [
    "--policy",
    policy(x, `sources:\n  deny: ["github:evil/*"]\n`),
    libA,
  ]);
  assert.equal(denied.code, 1);
  assert.match(
    denied.out.paths[0]?.reason ?? "",
    /flake source github:evil\/repo\/0123456789abcdef is denied by the policy \(github:evil\/\*\)/,
  );
  const allowOnly = verifyPolicy(x, [
    "--policy",
    policy(x, `sources:\n  allow: ["github:acme/*"]\n`),
    libA,
  ]);
  assert.match(
    allowOnly.out.paths[0]?.reason ?? "",
    /is not among the sources the policy allows \(github:acme\/\*\)/,
  );

  // An expired policy.
  const expired = policyFile(h, `expires: "2020-01-01T00:00:00Z"\n${trusting(h)}`, "expired.yaml");
  const e = verifyPolicy(h, ["--policy", expired, app]);
  assert.equal(e.code, 1);
  assert.match(e.out.reason ?? "", /the policy expired at 2020-01-01T00:00:00\.000Z/);

  // A builder id the key is not bound to.
  const bound = policyFile(
    h,
    `builders:\n  - id: https://ci.example/builder\n    keys: ["${h.pub}"]\n`,
    "bound.yaml",
  );
  const b = verifyPolicy(h, ["--policy", bound, libA]);
  assert.match(
    b.out.paths[0]?.reason ?? "",
    /signed by .* as builder 'https:\/\/provenix\.dev\/builders\/nix-local\/v1#.*', which the policy does not bind to that key/,
  );
});

test("a missing attestation deep in the build closure fails on that path alone; an exception covers it until it expires", () => {
  const h = home();
  const { app, libA } = builtAndAttested(h, `${SALT}-deep`, ["-liba-1.0.drv"]);
  const policy = policyFile(h, trusting(h));
  const r = verifyPolicy(h, ["--policy", policy, "--closure", "build", app]);
  assert.equal(r.code, 1);
  const failing = r.out.paths.filter((p) => !p.ok);
  assert.deepEqual(
    failing.map((p) => [p.path, p.reason]),
    [[libA, `no provenance for ${libA}`]],
  );
  const text = provenix(["verify", "--policy", policy, "--closure", "build", app], h.env);
  assert.match(text.stdout, new RegExp(`FAIL ${libA}: no provenance for ${libA}`));
  assert.match(
    text.stdout,
    /4 by provenance, 0 substituted .* 1 sources named by provenance, 0 excepted, 1 failing/,
  );

  const excepted = policyFile(
    h,
    `${trusting(h)}exceptions:\n  - name: "liba-*"\n    reason: bootstrap library, audited by hand\n`,
    "exc.yaml",
  );
  const ok = verifyPolicy(h, ["--policy", excepted, "--closure", "build", app]);
  assert.equal(ok.code, 0, JSON.stringify(ok.out));
  assert.deepEqual(
    ok.out.paths.filter((p) => p.basis === "excepted").map((p) => [p.path, p.reason]),
    [[libA, "bootstrap library, audited by hand"]],
  );
  const lapsed = policyFile(
    h,
    `${trusting(h)}exceptions:\n  - path: ${libA}\n    reason: temporary\n    expires: "2021-06-01T00:00:00Z"\n`,
    "lapsed.yaml",
  );
  const l = verifyPolicy(h, ["--policy", lapsed, "--closure", "build", app]);
  assert.equal(l.code, 1);
  assert.match(
    l.out.paths.find((p) => !p.ok)?.reason ?? "",
    /no provenance for .* \(its policy exception expired at 2021-06-01T00:00:00\.000Z\)/,
  );
});

test("policy requirements: an SBOM for the artifact, reproduction by K trusted keys", () => {
  const h = home();
  const { libA } = builtAndAttested(h, `${SALT}-req`);
  const sbom = verifyPolicy(h, [
    "--policy",
    policyFile(h, `${trusting(h)}require:\n  sbom: true\n`),
    libA,
  ]);
  assert.equal(sbom.code, 1);
  assert.match(
    sbom.out.paths[0]?.reason ?? "",
    /no SBOM attestation \(CycloneDX or SPDX\) from a trusted builder/,
  );
  assert.equal(provenix(["attest", "--sbom", "cyclonedx", libA], h.env).code, 0);
  assert.equal(
    verifyPolicy(h, [
      "--policy",
      policyFile(h, `${trusting(h)}require:\n  sbom: true\n`, "s2.yaml"),
      libA,
    ]).code,
    0,
  );

  const rebuilder = home();
  const twice = policyFile(
    h,
    `${trusting(h)}rebuilders:\n  - keys: ["${rebuilder.pub}"]\nrequire:\n  reproducedBy: 2\n`,
    "k2.yaml",
  );
  const one = verifyPolicy(h, ["--policy", twice, libA]);
  assert.equal(one.code, 1);
  assert.match(
    one.out.paths[0]?.reason ?? "",
    /reproduced by 1 trusted key\(s\), the policy requires 2/,
  );
  assert.equal(provenix(["rebuild", "--quiet", libA], rebuilder.env).code, 0);
  const bundle = join(h.dir, "rebuild.json");
  assert.equal(
    provenix(
      [
        "export",
        libA,
        "--predicate-type",
        "https://provenix.dev/attestations/reproducibility/v1",
        "-o",
        bundle,
      ],
      rebuilder.env,
    ).code,
    0,
  );
  assert.equal(provenix(["import", bundle, "--trusted-key", rebuilder.pub], h.env).code, 0);
  assert.equal(verifyPolicy(h, ["--policy", twice, libA]).code, 0);
});

test("bad policy files: one line, exit 2", () => {
  const h = home();
  const cases: [string, RegExp][] = [
    ["apiVersion: provenix.dev/policy/v1\nbuilders: [\n", /not YAML or JSON/],
    ["apiVersion: provenix.dev/policy/v2\nbuilders: []\n", /apiVersion must be equal to constant/],
    [
      "apiVersion: provenix.dev/policy/v1\nbuilders: []\nsurprise: 1\n",
      /must NOT have additional properties 'surprise'/,
    ],
    [
      'apiVersion: provenix.dev/policy/v1\nbuilders:\n  - keys: ["nokey"]\n',
      /builders\.0\.keys\.0 must match pattern/,
    ],
    [
      'apiVersion: provenix.dev/policy/v1\nbuilders:\n  - keyFiles: ["missing.pub"]\n',
      /builders\[0\]: cannot read public key/,
    ],
    [
      "apiVersion: provenix.dev/policy/v1\napiVersion: provenix.dev/policy/v1\nbuilders: []\n",
      /not YAML or JSON: Map keys must be unique/,
    ],
  ];
  for (const [i, [text, message]] of cases.entries()) {
    const f = join(h.dir, `bad${i}.yaml`);
    writeFileSync(f, text);
    const r = provenix(["verify", "--policy", f, "/nix/store"], h.env);
    assert.equal(r.code, 2, `${text}: ${r.stderr}`);
    assert.ok(isOneLineError(r), r.stderr);
    assert.match(r.stderr, message);
  }
  const missing = provenix(["verify", "--policy", join(h.dir, "none.yaml"), "/nix/store"], h.env);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /cannot read policy .*none\.yaml: ENOENT/);
});
