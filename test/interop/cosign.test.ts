// Interoperability with cosign 2.5 (Debian trixie), in both directions, for every kind
// of bundle provenix writes: provenance, SBOM, reproducibility, VSA; blobs (a store
// path's NAR, as `nix-store --dump` writes it) and images in a real registry.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import test from "node:test";
import { parsePublicKey } from "../../src/sign/index.js";
import { cliHome, provenix, provenixAsync } from "../helpers/cli.js";
import {
  cosign,
  cosignAttest,
  cosignKeyPair,
  cosignVerifyBlob,
  EMPTY_TRUSTED_ROOT,
} from "../helpers/cosign.js";
import { BUILDS, FIXTURES, run, tempDir, useTestNix } from "../helpers/nix.js";
import { Registry } from "../helpers/registry.js";
import { securesystemslibVerifies } from "../helpers/securesystemslib.js";
import { sigstoreVerify } from "../helpers/sigstore.js";

useTestNix();
const SALT = `cosign-${process.pid}-${Date.now()}`;

function ok(r: { code: number; stdout: string; stderr: string }, what: string): string {
  assert.equal(r.code, 0, `${what}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

function buildApp(salt: string): string {
  return run("nix-build", [BUILDS, "-A", "app", "--argstr", "salt", salt, "--no-out-link"]).trim();
}

/** The NAR of a store path, as Nix serialises it: the bytes a subject's digest is over. */
function narFile(path: string, dir: string, name = "out"): string {
  const file = join(dir, `${name}.nar`);
  writeFileSync(file, execFileSync("nix-store", ["--dump", path], { maxBuffer: 1 << 30 }));
  return file;
}

/** A minimal SLSA provenance v1 predicate for cosign to attest (cosign checks its fields). */
function slsaPredicateFile(dir: string, builderId: string): string {
  const file = join(dir, "predicate.json");
  writeFileSync(
    file,
    JSON.stringify({
      buildDefinition: { buildType: "https://example.com/cosign-test", externalParameters: {} },
      runDetails: { builder: { id: builderId } },
    }),
  );
  return file;
}

interface Decoded {
  predicateType: string;
  subject: { name: string; digest: { sha256: string } }[];
}

function statementOf(bundleFile: string): Decoded {
  const b = JSON.parse(readFileSync(bundleFile, "utf8")) as { dsseEnvelope: { payload: string } };
  return JSON.parse(Buffer.from(b.dsseEnvelope.payload, "base64").toString()) as Decoded;
}

type Json = {
  dsseEnvelope: { payload: string; payloadType: string; signatures: { sig: string }[] };
};

function tampered(bundleFile: string, dir: string, what: string, f: (j: Json) => void): string {
  const j = JSON.parse(readFileSync(bundleFile, "utf8")) as Json;
  f(j);
  const file = join(dir, `tampered-${what}.sigstore.json`);
  writeFileSync(file, JSON.stringify(j));
  return file;
}

const PREDICATES = [
  "https://slsa.dev/provenance/v1",
  "https://cyclonedx.org/bom",
  "https://provenix.dev/attestations/reproducibility/v1",
  "https://slsa.dev/verification_summary/v1",
];

for (const format of ["pem-p256", "pem-ed25519", "nix"] as const) {
  test(`${format}: cosign verify-blob-attestation (against the subject's NAR), sigstore-js, securesystemslib and provenix accept provenance, SBOM, reproducibility and VSA bundles, and reject them tampered`, () => {
    const env = cliHome();
    const dir = tempDir();
    ok(provenix(["keygen", "--format", format], env), "keygen");
    const app = buildApp(`${SALT}-${format}`);
    ok(provenix(["attest", "--sbom", "cyclonedx", app], env), "attest --sbom");
    ok(provenix(["rebuild", "--quiet", "--no-diffoscope", app], env), "rebuild");
    const pubFile = join(env.XDG_CONFIG_HOME ?? "", "provenix", "signing.pub");
    const policy = join(dir, "policy.yaml");
    writeFileSync(
      policy,
      `apiVersion: provenix.dev/policy/v1\nbuilders:\n  - keyFiles: ["${pubFile}"]\n`,
    );
    ok(
      provenix(["verify", "--policy", policy, "--emit-vsa", join(dir, "vsa.json"), app], env),
      "verify --emit-vsa",
    );
    const bundles = join(dir, "bundles");
    ok(provenix(["export", "--all", "-o", bundles, app], env), "export --all");

    // cosign takes a PEM key; for a Nix key, `provenix key export` makes one.
    const pem = join(dir, "key.pem");
    ok(provenix(["key", "export", "--out", pem], env), "key export");
    const key = parsePublicKey(readFileSync(pem, "utf8"));
    if (format === "nix") {
      assert.equal(key.algorithm, "ed25519");
      const nix = ok(provenix(["key", "export", "--format", "nix", pubFile], env), "export nix");
      assert.equal(nix.trim(), readFileSync(pubFile, "utf8").trim());
    }

    const seen = new Set<string>();
    const nar = narFile(app, dir);
    for (const f of readdirSync(bundles).map((n) => join(bundles, n))) {
      const st = statementOf(f);
      assert.ok(
        st.subject.some((s) => s.name === app),
        `${st.predicateType} is about ${app}`,
      );
      seen.add(st.predicateType);
      const r = cosignVerifyBlob(f, pem, st.predicateType, nar);
      assert.equal(r.code, 0, `cosign rejects ${st.predicateType}: ${r.stderr}`);
      assert.match(r.stderr, /Verified OK/);
      const bytes = readFileSync(f);
      sigstoreVerify(bytes, key); // throws if sigstore-js does not accept it
      assert.equal(
        securesystemslibVerifies(bytes, key),
        true,
        `securesystemslib: ${st.predicateType}`,
      );
      assert.equal(provenix(["verify", f], env).code, 0, `provenix: ${st.predicateType}`);
    }
    assert.deepEqual([...seen].sort(), [...PREDICATES].sort());

    // The same provenance, tampered: every verifier says no.
    const provenance = readdirSync(bundles)
      .map((n) => join(bundles, n))
      .find((f) => statementOf(f).predicateType === PREDICATES[0]) as string;
    const cases: [string, string][] = [
      [
        "payload",
        tampered(provenance, dir, "payload", (j) => {
          const s = JSON.parse(Buffer.from(j.dsseEnvelope.payload, "base64").toString()) as {
            predicate: { runDetails: { builder: { id: string } } };
          };
          s.predicate.runDetails.builder.id = "https://attacker.example/builder";
          j.dsseEnvelope.payload = Buffer.from(JSON.stringify(s)).toString("base64");
        }),
      ],
      [
        "signature",
        tampered(provenance, dir, "signature", (j) => {
          const sig = j.dsseEnvelope.signatures[0] as { sig: string };
          const s = Buffer.from(sig.sig, "base64");
          s[s.length - 3] = (s[s.length - 3] as number) ^ 0x40;
          sig.sig = s.toString("base64");
        }),
      ],
      [
        "payloadType",
        tampered(provenance, dir, "payloadType", (j) => {
          j.dsseEnvelope.payloadType = "application/vnd.in-toto.provenance+json";
        }),
      ],
    ];
    for (const [what, file] of cases) {
      const bytes = readFileSync(file);
      assert.notEqual(statementOf(file).subject.length, 0);
      const c = cosignVerifyBlob(file, pem, PREDICATES[0] as string, nar);
      assert.notEqual(c.code, 0, `cosign accepts a tampered ${what}`);
      assert.throws(() => sigstoreVerify(bytes, key), Error, `sigstore-js accepts ${what}`);
      assert.equal(securesystemslibVerifies(bytes, key), false, `securesystemslib accepts ${what}`);
      const p = provenix(["verify", file], env);
      assert.equal(p.code, 1, `provenix accepts a tampered ${what}`);
      assert.match(p.stdout, /signature does not verify/);
    }
    // The subject digest: another output's NAR is not what was attested.
    const other = narFile(buildApp(`${SALT}-${format}-other`), dir, "other");
    const c = cosignVerifyBlob(provenance, pem, PREDICATES[0] as string, other);
    assert.notEqual(c.code, 0);
    assert.match(c.stderr, /digest does not match/);
    const p = provenix(["verify", "--artifact", other, provenance], env);
    assert.equal(p.code, 1);
    assert.match(p.stdout, /no subject of the attestation has the sha256 of/);
    // And a key that did not sign it.
    const stranger = cosignKeyPair();
    assert.notEqual(
      cosignVerifyBlob(provenance, stranger.pub, PREDICATES[0] as string, nar).code,
      0,
    );
  });
}

test("provenix verifies cosign attest-blob bundles: a store path named by its base name with its NAR hash, a blob by --artifact; a blob subject is reported as not a store path, tampering and the wrong key fail", () => {
  const env = cliHome();
  const dir = tempDir();
  const keys = cosignKeyPair();
  const app = buildApp(`${SALT}-blob`);
  const nar = narFile(app, dir);
  const predicate = slsaPredicateFile(dir, "https://example.com/cosign-builder");
  const attest = (out: string, ...args: string[]) =>
    ok(
      cosignAttest(
        "attest-blob",
        keys.key,
        predicate,
        "--new-bundle-format",
        "--bundle",
        out,
        ...args,
      ),
      "cosign attest-blob",
    );
  // The Nix way with cosign: the NAR hash as the artifact's digest, the store path as its name.
  const byHash = join(dir, "by-hash.sigstore.json");
  const narSha256 = execFileSync("sha256sum", [nar], { encoding: "utf8" }).split(" ")[0] as string;
  attest(byHash, "--hash", narSha256, app);
  const v = provenix(["verify", "--json", "--key", keys.pub, byHash], env);
  assert.equal(v.code, 0, v.stdout);
  const [result] = JSON.parse(v.stdout) as {
    subjects: { name: string; status: string; path: string }[];
    attestation: { checks: { name: string; detail: string }[] };
  }[];
  assert.deepEqual(
    result?.subjects.map((s) => [s.name, s.status, s.path]),
    [[app.slice("/nix/store/".length), "verified", app]],
  );
  const detail = (name: string) => result?.attestation.checks.find((c) => c.name === name)?.detail;
  assert.equal(detail("predicateType"), "https://slsa.dev/provenance/v1");
  assert.equal(detail("statement"), "https://in-toto.io/Statement/v0.1"); // what cosign 2.5 writes

  // A plain blob: named by its file name, which is not a store path.
  const blob = join(dir, "blob.sigstore.json");
  attest(blob, nar);
  const unchecked = provenix(["verify", "--key", keys.pub, blob], env);
  assert.equal(unchecked.code, 1);
  assert.match(unchecked.stdout, /ok {3}signature/);
  assert.match(
    unchecked.stdout,
    /reason: signature is valid, but no subject was checked: subject 'out\.nar' is not a store path/,
  );
  const withArtifact = provenix(["verify", "--key", keys.pub, "--artifact", nar, blob], env);
  assert.equal(withArtifact.code, 0, withArtifact.stdout);
  assert.match(withArtifact.stdout, /matches the sha256 of .*\.nar/);
  const wrongType = provenix(
    ["verify", "--key", keys.pub, "--type", "https://cyclonedx.org/bom", byHash],
    env,
  );
  assert.equal(wrongType.code, 1);
  assert.match(wrongType.stdout, /predicateType is 'https:\/\/slsa.dev\/provenance\/v1', expected/);

  // cosign's own verdict on the same bundles, then tampered and wrong-key ones.
  assert.equal(cosignVerifyBlob(blob, keys.pub, "slsaprovenance1", nar).code, 0);
  const bad = tampered(byHash, dir, "cosign-payload", (j) => {
    const s = Buffer.from(j.dsseEnvelope.payload, "base64").toString();
    j.dsseEnvelope.payload = Buffer.from(s.replace("cosign-builder", "cosign-buildr")).toString(
      "base64",
    );
  });
  const t = provenix(["verify", "--key", keys.pub, bad], env);
  assert.equal(t.code, 1);
  assert.match(t.stdout, /signature does not verify/);
  const stranger = cosignKeyPair();
  assert.equal(provenix(["verify", "--key", stranger.pub, byHash], env).code, 1);
});

test("images: cosign verify-attestation accepts what provenix push attaches (the .att tag and, with --new-bundle-format, the referrer), cosign tree lists it; provenix verifies what cosign attest attaches, legacy and new format", async (t) => {
  const reg = await Registry.start(t);
  const env = cliHome();
  const dir = tempDir();
  ok(provenix(["keygen", "--format", "pem-p256"], env), "keygen");
  const pem = join(dir, "key.pem");
  ok(provenix(["key", "export", "--out", pem], env), "key export");
  const archive = run("nix-build", [
    join(FIXTURES, "images.nix"),
    "-A",
    "archive",
    "--argstr",
    "salt",
    SALT,
    "--no-out-link",
  ]).trim();
  const pushed = await provenixAsync(
    ["push", "--json", "--plain-http", "--cosign-att", archive, `${reg.host}/nix/app:v1`],
    env,
  );
  assert.equal(pushed.code, 0, pushed.stderr);
  const digest = (JSON.parse(pushed.stdout) as { manifest: { digest: string } }).manifest.digest;
  const image = `${reg.host}/nix/app@${digest}`;
  const verifyAttestation = (key: string, ...extra: string[]) =>
    cosign([
      "verify-attestation",
      "--key",
      key,
      "--type",
      "slsaprovenance1",
      "--insecure-ignore-tlog=true",
      "--trusted-root",
      EMPTY_TRUSTED_ROOT,
      "--allow-http-registry",
      ...extra,
      image,
    ]);
  const legacy = verifyAttestation(pem);
  assert.equal(legacy.code, 0, legacy.stderr);
  assert.match(legacy.stderr, /The signatures were verified against the specified public key/);
  const subject = (out: string) =>
    (
      JSON.parse(
        Buffer.from(
          (JSON.parse(out.trim().split("\n")[0] as string) as { payload: string }).payload,
          "base64",
        ).toString(),
      ) as Decoded
    ).subject.map((s) => s.name);
  assert.ok(subject(legacy.stdout).includes(`${reg.host}/nix/app`));
  const bundleFormat = verifyAttestation(pem, "--new-bundle-format");
  assert.equal(bundleFormat.code, 0, bundleFormat.stderr);
  assert.ok(subject(bundleFormat.stdout).includes(archive));
  const stranger = cosignKeyPair();
  assert.notEqual(verifyAttestation(stranger.pub).code, 0);
  assert.notEqual(verifyAttestation(stranger.pub, "--new-bundle-format").code, 0);
  const tree = cosign(["tree", "--allow-http-registry", image]);
  assert.equal(tree.code, 0, tree.stderr);
  assert.match(
    tree.stdout + tree.stderr,
    new RegExp(`Attestations for an image tag: .*${digest.replace(":", "-")}\\.att`),
  );

  // The other way: cosign attests an image (legacy .att, and a bundle referrer).
  const keys = cosignKeyPair();
  const predicate = slsaPredicateFile(dir, "https://example.com/b");
  for (const extra of [[], ["--new-bundle-format"]]) {
    ok(
      cosignAttest("attest", keys.key, predicate, "--allow-http-registry", ...extra, image),
      "cosign attest",
    );
  }
  // A consumer who trusts only the key given, not the pusher's own default key.
  const consumer = cliHome();
  const v = await provenixAsync(
    ["verify", "--json", "--plain-http", "--key", keys.pub, `oci://${image}`],
    consumer,
  );
  assert.equal(v.code, 0, v.stdout);
  const [r] = JSON.parse(v.stdout) as {
    attestations: { source: string; ok: boolean; signer?: string }[];
  }[];
  const cosignKeyId = parsePublicKey(readFileSync(keys.pub, "utf8")).keyid;
  const bySource = (source: string) =>
    r?.attestations.filter((a) => a.source === source && a.ok && a.signer === cosignKeyId).length;
  assert.equal(bySource("cosign-att"), 1, "cosign's legacy attestation");
  assert.equal(bySource("referrer"), 1, "cosign's new-format bundle");
  const wrong = await provenixAsync(
    ["verify", "--plain-http", "--key", stranger.pub, `oci://${image}`],
    consumer,
  );
  assert.equal(wrong.code, 1);
});
