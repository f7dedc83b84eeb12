import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { assertBundle, bundleFromJSON, bundleToJSON } from "@sigstore/bundle";
import { join } from "node:path";
import { test } from "node:test";
import { IN_TOTO_PAYLOAD_TYPE } from "../../src/attest/index.js";
import {
  generateKeyPair,
  keyBundleSigner,
  nixPublicKeyText,
  parseBundle,
  parseNixPublicKey,
  parseNixSecretKey,
  parsePemPublicKey,
  parsePublicKey,
  parseSecretKey,
  preAuthEncoding,
  signBundle,
  verifySignature,
  type PublicKey,
} from "../../src/sign/index.js";
import { loadPublicKeys, loadSigner, writeKeyPair } from "../../src/system/key-files.js";
import { parseJsonStrict, preverifySignatures, verifyAttestation } from "../../src/verify/index.js";
import { ROOT, run, tempDir, useTestNix } from "../helpers/nix.js";
import { sigstoreVerify } from "../helpers/sigstore.js";

useTestNix();

/** A key's SPKI SHA-256 in base64, by openssl from the PEM: a second means to our hint. */
function opensslSpkiSha256Base64(key: PublicKey): string {
  const pem = key.key.export({ format: "pem", type: "spki" }).toString();
  const der = execFileSync("openssl", ["pkey", "-pubin", "-outform", "DER"], { input: pem });
  return execFileSync("openssl", ["dgst", "-sha256", "-binary"], { input: der }).toString("base64");
}

test("PAE matches the DSSE spec's test vector", () => {
  assert.equal(
    preAuthEncoding("http://example.com/HelloWorld", Buffer.from("hello world")).toString(),
    "DSSEv1 29 http://example.com/HelloWorld 11 hello world",
  );
  // Lengths are byte lengths, not character counts.
  assert.equal(preAuthEncoding("t", Buffer.from("é")).toString(), "DSSEv1 1 t 2 é");
});

/** A key pair made by Nix itself. */
function nixKeyPair(name: string): { secret: string; public: string } {
  const dir = tempDir();
  run("nix-store", ["--generate-binary-cache-key", name, join(dir, "sk"), join(dir, "pk")]);
  return {
    secret: readFileSync(join(dir, "sk"), "utf8"),
    public: readFileSync(join(dir, "pk"), "utf8"),
  };
}

test("Nix keys from nix-store --generate-binary-cache-key sign and verify; our keygen makes keys Nix uses", () => {
  const pair = nixKeyPair("test.example-1");
  const signer = parseNixSecretKey(pair.secret);
  const pub = parseNixPublicKey(pair.public);
  assert.equal(signer.publicKey.keyid, "test.example-1");
  assert.equal(nixPublicKeyText(signer.publicKey), pair.public.trim());
  const sig = signer.sign(Buffer.from("data"));
  assert.ok(verifySignature(pub, Buffer.from("data"), sig));
  assert.ok(!verifySignature(pub, Buffer.from("datb"), sig));

  // Our Nix-format key signs a store path with `nix store sign`, and Nix verifies it.
  const ours = generateKeyPair("nix", "provenix-test-1");
  const dir = tempDir();
  writeFileSync(join(dir, "sk"), ours.secret);
  const [out] = run("nix-build", [
    join(process.cwd(), "test/fixtures/builds.nix"),
    "-A",
    "escapes",
    "--no-out-link",
  ])
    .trim()
    .split("\n");
  run("nix", ["store", "sign", "--key-file", join(dir, "sk"), out as string]);
  const verified = run("nix", [
    "store",
    "verify",
    "--no-contents",
    "--trusted-public-keys",
    ours.public,
    "--sigs-needed",
    "1",
    out as string,
  ]);
  assert.equal(verified, "");
});

test("malformed keys are refused without echoing the secret", () => {
  assert.throws(() => parseNixSecretKey("name:AAAA"), { code: "MALFORMED_KEY" });
  assert.throws(() => parseNixPublicKey("no-colon"), { code: "MALFORMED_KEY" });
  const pair = nixKeyPair("k");
  const [name, b64] = pair.secret.trim().split(":") as [string, string];
  const bytes = Buffer.from(b64, "base64");
  bytes[40] = (bytes[40] as number) ^ 1; // public half no longer matches the seed
  assert.throws(() => parseNixSecretKey(`${name}:${bytes.toString("base64")}`), {
    code: "KEY_MISMATCH",
  });
  const body = Buffer.from("definitely not a PKCS#8 private key, but secret-looking").toString(
    "base64",
  );
  const broken = `-----BEGIN PRIVATE KEY-----\n${body}\n-----END PRIVATE KEY-----\n`;
  assert.throws(
    () => parseSecretKey(broken),
    (e: Error & { code?: string; cause?: unknown }) =>
      e.code === "MALFORMED_KEY" &&
      !e.message.includes(body.slice(0, 16)) &&
      !String(e.cause).includes(body.slice(0, 16)),
  );
});

const statement = Buffer.from(
  JSON.stringify({
    _type: "https://in-toto.io/Statement/v1",
    subject: [{ name: "x", digest: { sha256: "00".repeat(32) } }],
    predicateType: "https://example/p",
  }),
);

for (const format of ["nix", "pem-ed25519", "pem-p256"] as const) {
  test(`${format}: @sigstore/verify accepts our bundle with only the public key, and rejects it tampered`, () => {
    const pair = generateKeyPair(format, "bundle-test-1");
    const signer = parseSecretKey(pair.secret);
    const pub = parsePublicKey(pair.public);
    assert.equal(pub.keyid, signer.publicKey.keyid);
    const bytes = signBundle(statement, IN_TOTO_PAYLOAD_TYPE, signer);
    const json = JSON.parse(bytes.toString()) as {
      mediaType: string;
      verificationMaterial: { publicKey: { hint: string } };
      dsseEnvelope: {
        payload: string;
        payloadType: string;
        signatures: { keyid: string; sig: string }[];
      };
    };
    assert.equal(json.mediaType, "application/vnd.dev.sigstore.bundle.v0.3+json");
    // The hint cosign and sigstore-go write (base64 SHA-256 of the SPKI DER, computed
    // here by openssl), and no DSSE keyid: go-securesystemslib skips a signature whose
    // keyid is not the one it computes for the key.
    assert.equal(json.verificationMaterial.publicKey.hint, opensslSpkiSha256Base64(pub));
    assert.equal(json.dsseEnvelope.signatures[0]?.keyid ?? "", "");
    assert.equal(json.dsseEnvelope.signatures.length, 1);

    sigstoreVerify(bytes, pub); // throws if it does not verify
    assert.ok(verifyAttestation(bytes, { trustedKeys: [pub] }).ok);

    const tamper = (f: (j: typeof json) => void): Buffer => {
      const copy = structuredClone(json);
      f(copy);
      return Buffer.from(JSON.stringify(copy));
    };
    const otherKey = parsePublicKey(generateKeyPair(format, "other-1").public);
    // [what, tampered bundle, our reason, whether sigstore-js must reject it too]
    const cases: [string, Buffer, RegExp, boolean][] = [
      [
        "payload",
        tamper(
          (j) =>
            (j.dsseEnvelope.payload = Buffer.from(
              statement.toString().replace('"x"', '"y"'),
            ).toString("base64")),
        ),
        /signature does not verify/,
        true,
      ],
      [
        "signature",
        tamper((j) => {
          const s = Buffer.from(j.dsseEnvelope.signatures[0]?.sig ?? "", "base64");
          s[s.length - 5] = (s[s.length - 5] as number) ^ 0x10;
          (j.dsseEnvelope.signatures[0] as { sig: string }).sig = s.toString("base64");
        }),
        /signature does not verify/,
        true,
      ],
      [
        "payloadType",
        tamper((j) => (j.dsseEnvelope.payloadType = "application/json")),
        /payloadType is 'application\/json'/,
        true,
      ],
      [
        "keyid",
        tamper((j) => ((j.dsseEnvelope.signatures[0] as { keyid: string }).keyid = "someone-else")),
        /differs from the DSSE keyid/,
        false,
      ],
    ];
    // A hint is unauthenticated: sigstore-js finds no key under a changed one, while
    // we try every trusted key (the signature is still good).
    const rehinted = tamper((j) => (j.verificationMaterial.publicKey.hint = "someone-else"));
    assert.throws(() => sigstoreVerify(rehinted, pub), Error, "sigstore-js looks keys up by hint");
    assert.ok(verifyAttestation(rehinted, { trustedKeys: [pub] }).ok);
    for (const [what, tampered, reason, sigstoreRejects] of cases) {
      // The DSSE keyid is unauthenticated, so sigstore-js ignores it; a keyid that
      // names another key than the hint is ambiguous, so we refuse it.
      if (sigstoreRejects)
        assert.throws(
          () => sigstoreVerify(tampered, pub),
          Error,
          `sigstore must reject tampered ${what}`,
        );
      const ours = verifyAttestation(tampered, { trustedKeys: [pub] });
      assert.equal(ours.ok, false, what);
      assert.match(ours.reason ?? "", reason, what);
    }
    assert.throws(
      () => sigstoreVerify(bytes, { ...otherKey, keyid: pub.keyid }),
      Error,
      "wrong key",
    );
    const wrong = verifyAttestation(bytes, { trustedKeys: [otherKey] });
    assert.match(wrong.reason ?? "", /does not verify with any of 1 trusted key/);
    assert.match(verifyAttestation(bytes, { trustedKeys: [] }).reason ?? "", /no trusted keys/);
  });
}

test("parseBundle refuses what is not a DSSE Sigstore bundle", () => {
  assert.throws(() => parseBundle(Buffer.from("{not json")), {
    code: "MALFORMED_BUNDLE",
    message: /not valid JSON/,
  });
  assert.throws(() => parseBundle(Buffer.from("[]")), {
    code: "MALFORMED_BUNDLE",
    message: /not a JSON object/,
  });
  assert.throws(() => parseBundle(Buffer.from('{"mediaType":"x"}')), { code: "MALFORMED_BUNDLE" });
  const signer = parseSecretKey(generateKeyPair("nix", "t-1").secret);
  const good = signBundle(statement, IN_TOTO_PAYLOAD_TYPE, signer);
  assert.throws(() => parseBundle(good.subarray(0, good.length - 10)), {
    code: "MALFORMED_BUNDLE",
  });
});

test("parseBundle reads every public DSSE bundle exactly as @sigstore/bundle's own decoder does", () => {
  const dir = join(ROOT, "..", "shared", "reference", "public-bundles");
  const files = readdirSync(dir, { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".json"))
    .map((f) => join(dir, f))
    .filter((f) => readFileSync(f, "utf8").includes('"dsseEnvelope"'));
  assert.ok(files.length >= 8, `${files.length} DSSE bundles`);
  let parsed = 0;
  for (const f of files) {
    const bytes = readFileSync(f);
    let theirs;
    try {
      theirs = bundleFromJSON(JSON.parse(bytes.toString("utf8")));
      assertBundle(theirs);
    } catch {
      assert.throws(() => parseBundle(bytes), { code: "MALFORMED_BUNDLE" }, f);
      continue;
    }
    const ours = parseBundle(bytes).bundle;
    assert.deepEqual(JSON.stringify(bundleToJSON(ours)), JSON.stringify(bundleToJSON(theirs)), f);
    if (ours.content.$case === "dsseEnvelope" && theirs.content.$case === "dsseEnvelope") {
      assert.ok(
        Buffer.from(ours.content.dsseEnvelope.payload).equals(
          Buffer.from(theirs.content.dsseEnvelope.payload),
        ),
      );
    }
    parsed++;
  }
  assert.ok(parsed >= 8, `${parsed} parsed`);
  // A payload that is no string, or empty, fails as the library fails.
  const good = JSON.parse(readFileSync(files[0] ?? "", "utf8")) as { dsseEnvelope: object };
  for (const payload of ["", 7]) {
    const bad = Buffer.from(
      JSON.stringify({ ...good, dsseEnvelope: { ...good.dsseEnvelope, payload } }),
    );
    assert.throws(() => parseBundle(bad), { code: "MALFORMED_BUNDLE" }, String(payload));
  }
});

test("key files: secret keys readable by group or others are refused; keys load from files", async () => {
  const dir = tempDir();
  const pair = generateKeyPair("nix", "file-test-1");
  await writeKeyPair(join(dir, "k.key"), join(dir, "k.pub"), pair);
  const signer = await loadSigner(join(dir, "k.key"));
  assert.equal(signer.publicKey.keyid, "file-test-1");
  assert.equal((await loadPublicKeys(join(dir, "k.pub")))[0]?.keyid, "file-test-1");
  await assert.rejects(
    writeKeyPair(join(dir, "k.key"), join(dir, "k2.pub"), pair),
    /already exists/,
  );
  for (const mode of [0o640, 0o604, 0o644]) {
    chmodSync(join(dir, "k.key"), mode);
    await assert.rejects(loadSigner(join(dir, "k.key")), (e: Error & { code?: string }) => {
      assert.equal(e.code, "KEY_FILE_INSECURE");
      assert.match(e.message, /readable by group or others.*chmod 600/);
      assert.ok(!e.message.includes(pair.secret.split(":")[1] as string));
      return true;
    });
  }
  await assert.rejects(loadSigner(join(dir, "missing.key")), { code: "KEY_FILE_UNREADABLE" });
  const pem = generateKeyPair("pem-p256", "x");
  writeFileSync(join(dir, "p.pub"), pem.public);
  assert.equal((await loadPublicKeys(join(dir, "p.pub")))[0]?.algorithm, "ecdsa-p256");
  assert.equal(parsePemPublicKey(pem.public).keyid.startsWith("sha256:"), true);
});

test("in-toto v1.2 predicate-specific payloadType: accepted, and the signature still covers it exactly", () => {
  const signer = parseSecretKey(generateKeyPair("pem-p256", "x").secret);
  const type = "application/vnd.in-toto.provenance+json";
  const bytes = signBundle(statement, type, signer);
  sigstoreVerify(bytes, signer.publicKey);
  const v = verifyAttestation(bytes, { trustedKeys: [signer.publicKey] });
  assert.equal(v.ok, true, v.reason);
  assert.equal(v.checks.find((c) => c.name === "payloadType")?.detail, type);
  // Swapped for the common type, or another predicate's: the PAE differs, so the signature fails.
  for (const other of [IN_TOTO_PAYLOAD_TYPE, "application/vnd.in-toto.vsa+json"]) {
    const json = JSON.parse(bytes.toString()) as { dsseEnvelope: { payloadType: string } };
    json.dsseEnvelope.payloadType = other;
    const r = verifyAttestation(Buffer.from(JSON.stringify(json)), {
      trustedKeys: [signer.publicKey],
    });
    assert.match(r.reason ?? "", /signature does not verify/, other);
  }
  for (const bad of ["application/vnd.in-toto.+json", "application/vnd.in-toto.Provenance+json"]) {
    const r = verifyAttestation(signBundle(statement, bad, signer), {
      trustedKeys: [signer.publicKey],
    });
    assert.match(r.reason ?? "", /payloadType is/, bad);
  }
});

test("parseJsonStrict refuses a duplicate key wherever it is, however it is escaped, and nothing else", () => {
  const dup = (t: string) => assert.throws(() => parseJsonStrict(t), /duplicate key/);
  dup('{"a": 1, "a": 2}');
  dup('{"ab" : 1,\n\t"a\\u0062": 2}');
  dup('{"x": [{"k": 1}, {"k": 2, "k": 3}]}');
  assert.throws(() => parseJsonStrict('{"x": [{"k": 1}, {"k": 2, "k": 3}]}'), /duplicate key "k"/);
  // Backslashes before a quote: an even run ends the string, an odd one escapes it.
  dup('{"a\\\\": 1, "a\\\\" : 2}');
  dup('{"v": "q\\":", "w": 1, "w": 2}');
  dup('{"__proto__": 1, "__proto__": 2}');
  assert.deepEqual(parseJsonStrict('{"a\\\\": 1, "a\\"": 2, "v": "q\\":", "w": [":"]}'), {
    "a\\": 1,
    'a"': 2,
    v: 'q":',
    w: [":"],
  });
  assert.deepEqual(parseJsonStrict('{"a": {"a": 1}, "b": ["a", "a"], "c": "a\\"b", "a\\"b": 1}'), {
    a: { a: 1 },
    b: ["a", "a"],
    c: 'a"b',
    'a"b': 1,
  });
  assert.throws(() => parseJsonStrict('{"a": }'), SyntaxError);
});

test("a key file signs on the thread pool: the same bundle as signing in place (Ed25519), one that verifies (ECDSA)", async () => {
  const ed = parseSecretKey(generateKeyPair("nix", "pool-1").secret);
  const p256 = parseSecretKey(generateKeyPair("pem-p256", "pool-2").secret);
  assert.equal(typeof ed.signAsync, "function");
  assert.equal(typeof p256.signAsync, "function");
  const pooled = await keyBundleSigner(ed).signBundle(statement, IN_TOTO_PAYLOAD_TYPE);
  assert.deepEqual(pooled, {
    bundle: signBundle(statement, IN_TOTO_PAYLOAD_TYPE, ed),
    keyid: ed.publicKey.keyid,
  });
  const ecdsa = await keyBundleSigner(p256).signBundle(statement, IN_TOTO_PAYLOAD_TYPE);
  assert.equal(verifyAttestation(ecdsa.bundle, { trustedKeys: [p256.publicKey] }).ok, true);
  assert.equal(verifyAttestation(ecdsa.bundle, { trustedKeys: [ed.publicKey] }).ok, false);
});

test("signatures checked ahead on the thread pool give verifyAttestation the same verdicts: good, tampered, wrong key, ECDSA", async () => {
  const ed = parseSecretKey(generateKeyPair("nix", "pre-1").secret);
  const p256 = parseSecretKey(generateKeyPair("pem-p256", "pre-2").secret);
  const other = parseSecretKey(generateKeyPair("nix", "pre-3").secret);
  const good = signBundle(statement, IN_TOTO_PAYLOAD_TYPE, ed);
  const ecdsa = signBundle(statement, IN_TOTO_PAYLOAD_TYPE, p256);
  const byOther = signBundle(statement, IN_TOTO_PAYLOAD_TYPE, other);
  const json = JSON.parse(good.toString()) as { dsseEnvelope: { payload: string } };
  json.dsseEnvelope.payload = Buffer.from(
    statement.toString().replace("https://example/p", "https://example/q"),
  ).toString("base64");
  const tampered = Buffer.from(JSON.stringify(json));
  const keys = [ed.publicKey, p256.publicKey];
  const bundles = [good, ecdsa, byOther, tampered, Buffer.from("not a bundle")];
  const signatures = await preverifySignatures(bundles, keys);
  for (const b of bundles) {
    const direct = verifyAttestation(b, { trustedKeys: keys });
    const ahead = verifyAttestation(b, { trustedKeys: keys, signatures });
    assert.deepEqual(ahead, direct);
  }
  assert.deepEqual(
    bundles.map((b) => verifyAttestation(b, { trustedKeys: keys, signatures }).ok),
    [true, true, false, false, false],
  );
});
