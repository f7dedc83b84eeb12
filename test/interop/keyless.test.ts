// Keyless signing and trusted time, against Sigstore's services from @sigstore/mock
// on 127.0.0.1 (Fulcio with a CT log, Rekor v1, a TSA), checked by cosign 2.5,
// sigstore-go and sigstore-js as well as provenix; and verifying real public-good
// bundles offline with their identities.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import test from "node:test";
import { bundleFromJSON } from "@sigstore/bundle";
import { TrustedRoot } from "@sigstore/protobuf-specs";
import { toSignedEntity, toTrustMaterial, Verifier } from "@sigstore/verify";
import { cliHome, isOneLineError, provenix, provenixAsync } from "../helpers/cli.js";
import { cosign } from "../helpers/cosign.js";
import { BUILDS, ROOT, run, tempDir, useTestNix } from "../helpers/nix.js";
import { identityToken, sigstoreServices, TEST_ISSUER } from "../helpers/sigstore-services.js";

useTestNix();
const SALT = `keyless-${process.pid}-${Date.now()}`;
const SIGSTORE_GO = join(
  ROOT,
  ".tools",
  "trixie",
  "root",
  "usr",
  "bin",
  "sigstore-go-verification",
);
const PUBLIC = join(ROOT, "..", "shared", "reference", "public-bundles");
const WORKFLOW = "https://github.com/acme/app/.github/workflows/build.yml@refs/heads/main";

function buildApp(salt: string): string {
  return run("nix-build", [BUILDS, "-A", "app", "--argstr", "salt", salt, "--no-out-link"]).trim();
}

function narFile(path: string, dir: string): string {
  const file = join(dir, "out.nar");
  writeFileSync(file, execFileSync("nix-store", ["--dump", path], { maxBuffer: 1 << 30 }));
  return file;
}

/** The one bundle `export --all` writes for a path. */
function exported(env: NodeJS.ProcessEnv, path: string): string {
  const dir = tempDir("provenix-export-");
  const r = provenix(["export", "--all", "-o", dir, path], env);
  assert.equal(r.code, 0, r.stderr);
  const [file] = readdirSync(dir);
  return join(dir, file ?? "");
}

function sigstoreJsVerifies(bundleFile: string, trustedRoot: string, san: string): void {
  const root = TrustedRoot.fromJSON(JSON.parse(readFileSync(trustedRoot, "utf8")));
  const bundle = bundleFromJSON(JSON.parse(readFileSync(bundleFile, "utf8")));
  new Verifier(toTrustMaterial(root)).verify(toSignedEntity(bundle), {
    subjectAlternativeName: san,
    extensions: { issuer: TEST_ISSUER },
  });
}

function sigstoreGo(args: string[]) {
  const r = spawnSync(SIGSTORE_GO, args, { encoding: "utf8" });
  return { code: r.status ?? -1, out: r.stdout + r.stderr };
}

test("keyless: attest with a Fulcio certificate and a Rekor entry; cosign, sigstore-go, sigstore-js and provenix accept it with the right identity, and refuse a wrong identity, issuer or extension", async (t) => {
  const services = await sigstoreServices(t);
  const env = cliHome();
  const dir = tempDir();
  const token = join(dir, "token");
  writeFileSync(
    token,
    identityToken(WORKFLOW, {
      repository: "acme/app",
      ref: "refs/heads/main",
      sha: "0123456789abcdef0123456789abcdef01234567",
      workflow: "build",
      event_name: "push",
    }),
  );
  const app = buildApp(`${SALT}-a`);
  const sign = [
    "--keyless",
    "--identity-token",
    token,
    "--fulcio-url",
    services.url,
    "--rekor-url",
    services.url,
    "--timestamp-url",
    services.url,
  ];
  const a = await provenixAsync(["attest", "--json", ...sign, app], env);
  assert.equal(a.code, 0, a.stderr);
  assert.match(a.stdout, new RegExp(`"keyid": "${WORKFLOW} \\(${TEST_ISSUER}\\)"`));
  assert.equal(services.hits.get("/api/v2/signingCert"), 1);
  assert.equal(services.hits.get("/api/v1/log/entries"), 1);
  assert.equal(services.hits.get("/api/v1/timestamp"), 1);

  const trust = ["--trusted-root", services.trustedRoot];
  const who = ["--certificate-identity", WORKFLOW, "--certificate-oidc-issuer", TEST_ISSUER];
  const verify = (args: string[]) =>
    provenix(["verify", "--json", "--no-nix-keys", ...trust, ...args, app], env);
  const good = verify(who);
  assert.equal(good.code, 0, good.stdout + good.stderr);
  assert.match(good.stdout, /signed keylessly by 'https:\/\/github.com\/acme\/app/);
  for (const [args, reason] of [
    [
      [
        "--certificate-identity",
        "https://github.com/evil/app",
        "--certificate-oidc-issuer",
        TEST_ISSUER,
      ],
      /certificate identity is '.*acme.*', expected 'https:\/\/github.com\/evil\/app'/,
    ],
    [
      [
        "--certificate-identity",
        WORKFLOW,
        "--certificate-oidc-issuer",
        "https://accounts.google.com",
      ],
      /OIDC issuer is 'https:\/\/oidc.provenix.test', expected 'https:\/\/accounts.google.com'/,
    ],
    [
      [...who, "--certificate-github-workflow-repository", "evil/app"],
      /githubWorkflowRepository is 'acme\/app', expected 'evil\/app'/,
    ],
    [[], /no identity is trusted/],
  ] as const) {
    const r = verify([...args]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, reason);
  }
  const regexp = verify([
    "--certificate-identity-regexp",
    "https://github\\.com/acme/.*",
    "--certificate-oidc-issuer-regexp",
    "https://oidc\\.provenix\\..*",
    "--certificate-github-workflow-repository",
    "acme/app",
    "--certificate-extension",
    "sourceRepositoryURI=https://github.com/acme/app",
  ]);
  assert.equal(regexp.code, 0, regexp.stdout);
  // A regexp matches the whole identity, not a part of it.
  const partial = verify([
    "--certificate-identity-regexp",
    "acme",
    "--certificate-oidc-issuer",
    TEST_ISSUER,
  ]);
  assert.equal(partial.code, 1);

  // The independent verifiers.
  const bundle = exported(env, app);
  const nar = narFile(app, dir);
  const c = cosign([
    "verify-blob-attestation",
    "--bundle",
    bundle,
    "--new-bundle-format",
    "--trusted-root",
    services.trustedRoot,
    "--certificate-identity",
    WORKFLOW,
    "--certificate-oidc-issuer",
    TEST_ISSUER,
    "--type",
    "slsaprovenance1",
    nar,
  ]);
  assert.equal(c.code, 0, c.stderr);
  const wrong = cosign([
    "verify-blob-attestation",
    "--bundle",
    bundle,
    "--new-bundle-format",
    "--trusted-root",
    services.trustedRoot,
    "--certificate-identity",
    "https://github.com/evil/app",
    "--certificate-oidc-issuer",
    TEST_ISSUER,
    "--type",
    "slsaprovenance1",
    nar,
  ]);
  assert.notEqual(wrong.code, 0, "cosign refuses a wrong identity");
  const sha256 = (JSON.parse(good.stdout) as { sha256: string }[])[0]?.sha256 ?? "";
  const goArgs = [
    "-trustedrootJSONpath",
    services.trustedRoot,
    "-artifact-digest",
    sha256,
    "-expectedIssuer",
    TEST_ISSUER,
  ];
  const g = sigstoreGo([...goArgs, "-expectedSAN", WORKFLOW, bundle]);
  assert.equal(g.code, 0, g.out);
  const gw = sigstoreGo([...goArgs, "-expectedSAN", "https://github.com/evil/app", bundle]);
  assert.notEqual(gw.code, 0, "sigstore-go refuses a wrong identity");
  sigstoreJsVerifies(bundle, services.trustedRoot, WORKFLOW);
  assert.throws(() =>
    sigstoreJsVerifies(bundle, services.trustedRoot, "https://github.com/evil/app"),
  );

  // Tampered: the log entry's body, its SET, the certificate's time.
  const json = () =>
    JSON.parse(readFileSync(bundle, "utf8")) as {
      verificationMaterial: {
        tlogEntries: {
          integratedTime: string;
          canonicalizedBody: string;
          inclusionPromise: { signedEntryTimestamp: string };
        }[];
        timestampVerificationData?: unknown;
      };
    };
  const variants: [string, (b: ReturnType<typeof json>) => void][] = [
    [
      "a tampered log entry",
      (b) => {
        const e = b.verificationMaterial.tlogEntries[0]!;
        const body = JSON.parse(Buffer.from(e.canonicalizedBody, "base64").toString()) as {
          spec: unknown;
        };
        e.canonicalizedBody = Buffer.from(JSON.stringify({ ...body, spec: {} })).toString("base64");
      },
    ],
    [
      "a tampered SET",
      (b) => {
        const e = b.verificationMaterial.tlogEntries[0]!;
        const set = Buffer.from(e.inclusionPromise.signedEntryTimestamp, "base64");
        set.writeUInt8((set.at(-1) ?? 0) ^ 1, set.length - 1);
        e.inclusionPromise.signedEntryTimestamp = set.toString("base64");
      },
    ],
  ];
  for (const [what, change] of variants) {
    const b = json();
    change(b);
    const file = join(dir, `${what.replace(/ /g, "-")}.json`);
    writeFileSync(file, JSON.stringify(b));
    const r = provenix(["verify", "--no-nix-keys", ...trust, ...who, "--artifact", nar, file], env);
    assert.equal(r.code, 1, `${what}: ${r.stdout}`);
    assert.match(r.stdout, /keyless signature of .* does not verify/, what);
    const cg = sigstoreGo([...goArgs, "-expectedSAN", WORKFLOW, file]);
    assert.notEqual(cg.code, 0, `sigstore-go refuses ${what}`);
  }
});

test("keyless with a Sigstore SigningConfig: the services come from the file", async (t) => {
  const services = await sigstoreServices(t);
  const env = cliHome();
  const dir = tempDir();
  const token = join(dir, "token");
  writeFileSync(token, identityToken("builder@example.org"));
  const service = (url: string) => ({
    url,
    majorApiVersion: 1,
    validFor: { start: "2020-01-01T00:00:00Z" },
    operator: "test",
  });
  const config = join(dir, "signing_config.json");
  writeFileSync(
    config,
    JSON.stringify({
      mediaType: "application/vnd.dev.sigstore.signingconfig.v0.2+json",
      caUrls: [
        service(services.url),
        {
          ...service("http://127.0.0.1:9"),
          validFor: { start: "2019-01-01T00:00:00Z", end: "2020-01-01T00:00:00Z" },
        },
      ],
      oidcUrls: [],
      rekorTlogUrls: [service(services.url)],
      tsaUrls: [service(`${services.url}/api/v1/timestamp`)],
      rekorTlogConfig: { selector: "ANY" },
      tsaConfig: { selector: "ANY" },
    }),
  );
  const app = buildApp(`${SALT}-f`);
  const a = await provenixAsync(
    ["attest", "--keyless", "--identity-token", token, "--signing-config", config, app],
    env,
  );
  assert.equal(a.code, 0, a.stderr);
  assert.equal(services.hits.get("/api/v2/signingCert"), 1);
  assert.equal(services.hits.get("/api/v1/log/entries"), 1);
  assert.equal(services.hits.get("/api/v1/timestamp"), 1);
  const v = provenix(
    [
      "verify",
      "--no-nix-keys",
      "--trusted-root",
      services.trustedRoot,
      "--certificate-identity",
      "builder@example.org",
      "--certificate-oidc-issuer",
      TEST_ISSUER,
      app,
    ],
    env,
  );
  assert.equal(v.code, 0, v.stdout);
  const bad = join(dir, "bad.json");
  writeFileSync(bad, JSON.stringify({ mediaType: "application/json" }));
  const r = await provenixAsync(
    ["attest", "--keyless", "--identity-token", token, "--signing-config", bad, app],
    env,
  );
  assert.equal(r.code, 3, r.stderr);
  assert.ok(isOneLineError(r), r.stderr);
  assert.match(r.stderr, /is not a Sigstore signing config/);
});

test("a policy names builders by keyless identity: the closure passes with the right repository and fails with another; the VSA is signed keylessly too", async (t) => {
  const services = await sigstoreServices(t);
  const env = cliHome();
  const dir = tempDir();
  const token = join(dir, "token");
  writeFileSync(token, identityToken(WORKFLOW, { repository: "acme/app" }));
  const app = buildApp(`${SALT}-g`);
  const closure = run("nix-store", ["--query", "--requisites", app]).trim().split("\n");
  const sign = ["--keyless", "--identity-token", token, "--fulcio-url", services.url];
  const a = await provenixAsync(["attest", ...sign, "--rekor-url", services.url, ...closure], env);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(
    services.hits.get("/api/v2/signingCert"),
    closure.length,
    "one certificate per signature",
  );
  const policy = (name: string, repo: string) => {
    const f = join(dir, name);
    writeFileSync(
      f,
      [
        "apiVersion: provenix.dev/policy/v1",
        "sigstore:",
        `  trustedRoot: ${services.trustedRoot}`,
        "builders:",
        "  - identities:",
        `      - subjectRegExp: "https://github\\\\.com/acme/.*"`,
        `        issuer: ${TEST_ISSUER}`,
        "        extensions:",
        `          githubWorkflowRepository: ${repo}`,
        "",
      ].join("\n"),
    );
    return f;
  };
  const vsa = join(dir, "vsa.json");
  const ok = await provenixAsync(
    [
      "verify",
      "--json",
      "--policy",
      policy("good.yaml", "acme/app"),
      "--closure",
      "runtime",
      "--emit-vsa",
      vsa,
      ...sign,
      "--rekor-url",
      services.url,
      app,
    ],
    env,
  );
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  const result = JSON.parse(ok.stdout) as {
    paths: { path: string; basis: string; detail?: string }[];
  };
  assert.deepEqual(
    result.paths.map((p) => p.basis),
    closure.map(() => "provenance"),
  );
  const vsaBundle = JSON.parse(readFileSync(vsa, "utf8")) as {
    verificationMaterial: { certificate?: unknown };
  };
  assert.ok(vsaBundle.verificationMaterial.certificate, "the VSA carries a Fulcio certificate");
  const bad = provenix(
    ["verify", "--policy", policy("bad.yaml", "evil/app"), "--closure", "runtime", app],
    env,
  );
  assert.equal(bad.code, 1, bad.stdout);
  assert.match(bad.stdout, /githubWorkflowRepository is 'acme\/app', expected 'evil\/app'/);
});

test("keyless: a certificate that was not valid at the log's time fails with that reason", async (t) => {
  // A log whose clock is an hour ahead: the 10-minute certificate has expired by then.
  const services = await sigstoreServices(t, { tlogClock: new Date(Date.now() + 3600_000) });
  const env = cliHome();
  const token = join(tempDir(), "token");
  writeFileSync(token, identityToken("builder@example.org"));
  const app = buildApp(`${SALT}-b`);
  const a = await provenixAsync(
    [
      "attest",
      "--keyless",
      "--identity-token",
      token,
      "--fulcio-url",
      services.url,
      "--rekor-url",
      services.url,
      app,
    ],
    env,
  );
  assert.equal(a.code, 0, a.stderr);
  const v = provenix(
    [
      "verify",
      "--no-nix-keys",
      "--trusted-root",
      services.trustedRoot,
      "--certificate-identity",
      "builder@example.org",
      "--certificate-oidc-issuer",
      TEST_ISSUER,
      app,
    ],
    env,
  );
  assert.equal(v.code, 1, v.stdout);
  assert.match(v.stdout, /does not verify: .*(expired|not valid|validity)/i);
});

test("keyless signing failures are one line, keep the token secret, and store nothing", async (t) => {
  const services = await sigstoreServices(t);
  const env = { ...cliHome(), SIGSTORE_ID_TOKEN: "" };
  const app = buildApp(`${SALT}-c`);
  const at = (args: string[], e: NodeJS.ProcessEnv = env) =>
    provenixAsync(
      [
        "attest",
        "--keyless",
        "--fulcio-url",
        services.url,
        "--rekor-url",
        services.url,
        ...args,
        app,
      ],
      e,
    );
  const none = await at([]);
  assert.equal(none.code, 4, none.stderr);
  assert.ok(isOneLineError(none), none.stderr);
  assert.match(none.stderr, /needs an OIDC identity token/);
  const secret = "not-a-jwt-but-secret-0123456789";
  const bad = await at([], { ...env, SIGSTORE_ID_TOKEN: secret });
  assert.equal(bad.code, 4, bad.stderr);
  assert.ok(isOneLineError(bad), bad.stderr);
  assert.doesNotMatch(bad.stderr + bad.stdout, new RegExp(secret));
  const token = identityToken("builder@example.org");
  services.fail("/api/v2/signingCert", 500, 10);
  const down = await at([], { ...env, SIGSTORE_ID_TOKEN: token });
  assert.equal(down.code, 7, down.stderr);
  assert.ok(isOneLineError(down), down.stderr);
  assert.ok(!down.stderr.includes(token), "the token is not in the message");
  const shown = provenix(["show", "--json", app], env);
  assert.deepEqual(
    (JSON.parse(shown.stdout) as { attestations: unknown[] }).attestations,
    [],
    "nothing was stored",
  );
});

test("key-signed bundles with an RFC 3161 timestamp: cosign (sigstore-go underneath) verifies the timestamp against the TSA of the trusted root; provenix checks it too", async (t) => {
  const services = await sigstoreServices(t);
  const env = cliHome();
  const dir = tempDir();
  assert.equal(provenix(["keygen", "--format", "pem-p256"], env).code, 0);
  const app = buildApp(`${SALT}-d`);
  const a = await provenixAsync(["attest", "--timestamp-url", services.url, app], env);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(services.hits.get("/api/v1/timestamp"), 1);
  const bundle = exported(env, app);
  const parsed = JSON.parse(readFileSync(bundle, "utf8")) as {
    verificationMaterial: {
      timestampVerificationData: { rfc3161Timestamps: { signedTimestamp: string }[] };
    };
  };
  assert.equal(parsed.verificationMaterial.timestampVerificationData.rfc3161Timestamps.length, 1);
  const pem = join(dir, "key.pem");
  assert.equal(provenix(["key", "export", "--out", pem], env).code, 0);
  const nar = narFile(app, dir);
  const cosignTimestamped = (file: string, key: string) =>
    cosign([
      "verify-blob-attestation",
      "--bundle",
      file,
      "--new-bundle-format",
      "--trusted-root",
      services.trustedRoot,
      "--key",
      key,
      "--type",
      "slsaprovenance1",
      "--insecure-ignore-tlog=true",
      "--use-signed-timestamps",
      nar,
    ]);
  const c = cosignTimestamped(bundle, pem);
  assert.equal(c.code, 0, c.stderr);

  const ok = provenix(["verify", "--trusted-root", services.trustedRoot, app], env);
  assert.equal(ok.code, 0, ok.stdout);
  assert.match(ok.stdout, /1 RFC 3161 timestamp\(s\) verified/);
  const unchecked = provenix(["verify", app], env);
  assert.equal(unchecked.code, 0, unchecked.stdout);
  assert.match(unchecked.stdout, /timestamps were not checked \(no trusted root\)/);
  // A tampered timestamp: provenix (with the trusted root) and cosign refuse it.
  const ts = Buffer.from(
    parsed.verificationMaterial.timestampVerificationData.rfc3161Timestamps[0]!.signedTimestamp,
    "base64",
  );
  ts.writeUInt8((ts.at(-10) ?? 0) ^ 1, ts.length - 10);
  parsed.verificationMaterial.timestampVerificationData.rfc3161Timestamps[0]!.signedTimestamp =
    ts.toString("base64");
  const tampered = join(dir, "tampered.json");
  writeFileSync(tampered, JSON.stringify(parsed));
  const r = provenix(
    ["verify", "--trusted-root", services.trustedRoot, "--artifact", nar, tampered],
    env,
  );
  assert.equal(r.code, 1, r.stdout);
  assert.match(r.stdout, /timestamps do not verify/);
  assert.notEqual(
    cosignTimestamped(tampered, pem).code,
    0,
    "cosign refuses the tampered timestamp",
  );
  // A TSA that fails: one line, exit 7, nothing stored.
  services.fail("/api/v1/timestamp", 500, 10);
  const other = buildApp(`${SALT}-e`);
  const down = await provenixAsync(["attest", "--timestamp-url", services.url, other], env);
  assert.equal(down.code, 7, down.stderr);
  assert.ok(isOneLineError(down), down.stderr);
});

test("public-good bundles verify offline with their identities, and not with others", () => {
  const env = cliHome();
  const root = join(PUBLIC, "trusted-roots", "production.trusted_root.json");
  const gh = "https://token.actions.githubusercontent.com";
  const cases = [
    [
      "gh-cli/sigstore-js-2.1.0-bundle.json",
      "https://github.com/sigstore/sigstore-js/.github/workflows/release.yml@refs/heads/main",
      "sigstore/sigstore-js",
    ],
    [
      "sigstore-go/sigstore.js@2.0.0-provenance.sigstore.json",
      "https://github.com/sigstore/sigstore-js/.github/workflows/release.yml@refs/heads/main",
      "sigstore/sigstore-js",
    ],
    [
      "gh-cli/reusable-workflow-attestation.sigstore.json",
      "https://github.com/github/artifact-attestations-workflows/.github/workflows/attest.yml@09b495c3f12c7881b3cc17209a327792065c1a1d",
      "malancas/attest-demo",
    ],
  ] as const;
  for (const [file, san, repo] of cases) {
    const bundle = join(PUBLIC, file);
    const args = (identity: string, repository: string = repo) => [
      "verify",
      "--json",
      "--no-nix-keys",
      "--trusted-root",
      root,
      "--certificate-identity",
      identity,
      "--certificate-oidc-issuer",
      gh,
      "--certificate-github-workflow-repository",
      repository,
      bundle,
    ];
    const ok = provenix(args(san), env);
    const checks = JSON.parse(ok.stdout) as {
      attestation?: { checks?: { name: string; ok: boolean }[] };
    }[];
    // The subjects are npm packages and a wheel, not store paths: the signature and
    // identity pass, and nothing else can be checked here.
    assert.equal(
      checks[0]?.attestation?.checks?.find((c) => c.name === "signature")?.ok,
      true,
      `${file}: ${ok.stdout}`,
    );
    const other = provenix(args(`${san}x`), env);
    assert.match(other.stdout, /certificate identity is/, file);
    const repoWrong = provenix(args(san, "evil/repo"), env);
    assert.match(repoWrong.stdout, /githubWorkflowRepository is/, file);
  }
});
