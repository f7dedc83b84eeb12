import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { parsePublicKey } from "../../src/sign/index.js";
import {
  clean,
  cliHome,
  isOneLineError,
  provenix,
  provenixAsync,
  type CliResult,
} from "../helpers/cli.js";
import {
  BUILDS,
  FIXTURES,
  ROOT,
  build,
  instantiate,
  run,
  tempDir,
  useTestNix,
} from "../helpers/nix.js";
import { sigstoreVerify } from "../helpers/sigstore.js";

useTestNix();

function ok(r: CliResult, what: string): CliResult {
  assert.equal(r.code, 0, `${what}: exit ${r.code}\n${r.stderr}${r.stdout}`);
  return r;
}

function fails(r: CliResult, code: number, message: RegExp): void {
  assert.equal(r.code, code, `exit code; stderr: ${r.stderr}`);
  assert.ok(isOneLineError(r), `one-line error, got: ${r.stderr}`);
  assert.match(r.stderr, message);
}

test("keygen, attest ./result, verify, show, export, and the exported bundle verifies with sigstore-js", () => {
  const env = cliHome();
  const dir = tempDir();
  const key = JSON.parse(ok(provenix(["keygen", "--json"], env), "keygen").stdout) as {
    secretKey: string;
    publicKey: string;
    public: string;
  };
  assert.equal(Number(run("stat", ["-c", "%a", key.secretKey])), 600);
  const [out] = build("app");
  symlinkSync(out as string, join(dir, "result"));

  const attested = JSON.parse(
    ok(provenix(["attest", "--json", "./result"], env, dir), "attest").stdout,
  ) as {
    derivation: string;
    subjects: { name: string; sha256: string }[];
    attestation: { inserted: boolean };
  }[];
  assert.equal(attested[0]?.derivation, instantiate("app"));
  assert.equal(attested[0]?.subjects[0]?.name, out);
  assert.equal(attested[0]?.attestation.inserted, true);
  const again = JSON.parse(
    ok(provenix(["attest", "--json", "./result"], env, dir), "attest again").stdout,
  ) as { attestation: { inserted: boolean } }[];
  assert.equal(again[0]?.attestation.inserted, false, "attesting twice stores once");

  const v = ok(provenix(["verify", "./result"], env, dir), "verify");
  assert.match(v.stdout, /^PASS \/nix\/store\/.*-app-3\.0$/m);
  for (const check of [
    "bundle",
    "payloadType",
    "signature",
    "statement",
    "predicateType",
    "subject",
    "builder",
  ]) {
    assert.match(v.stdout, new RegExp(`ok +${check} `), check);
  }
  assert.match(v.stdout, /recomputed from disk/);
  const vj = JSON.parse(
    ok(provenix(["verify", "--json", out as string], env), "verify --json").stdout,
  ) as { ok: boolean; sha256: string }[];
  assert.equal(vj[0]?.ok, true);

  const shown = JSON.parse(
    ok(provenix(["show", "--json", "./result"], env, dir), "show").stdout,
  ) as {
    attestations: {
      statement: { predicate: { buildDefinition: { externalParameters: { derivation: string } } } };
    }[];
  };
  assert.equal(shown.attestations.length, 1);
  assert.equal(
    shown.attestations[0]?.statement.predicate.buildDefinition.externalParameters.derivation,
    instantiate("app"),
  );

  const bundleFile = join(dir, "app.sigstore.json");
  ok(provenix(["export", "./result", "-o", bundleFile], env, dir), "export");
  sigstoreVerify(readFileSync(bundleFile), parsePublicKey(key.public));
  const vb = ok(provenix(["verify", bundleFile], env), "verify bundle");
  assert.match(vb.stdout, /matches the NAR on disk/);

  const jsonl = ok(
    provenix(["export", "--format", "intoto-jsonl", "./result"], env, dir),
    "export jsonl",
  ).stdout;
  const lines = jsonl.trim().split("\n");
  assert.equal(lines.length, 1);
  const envelope = JSON.parse(lines[0] as string) as {
    payloadType: string;
    payload: string;
    signatures: unknown[];
  };
  const bundle = JSON.parse(readFileSync(bundleFile, "utf8")) as {
    dsseEnvelope: { payload: string };
  };
  assert.equal(envelope.payload, bundle.dsseEnvelope.payload);
  assert.equal(envelope.payloadType, "application/vnd.in-toto+json");
});

test("attest a .drv, an installable with --build -A, and with PEM keys; multiple outputs", () => {
  const env = cliHome();
  const dir = tempDir();
  for (const format of ["pem-p256", "pem-ed25519"]) {
    const keyFile = join(dir, `${format}.key`);
    ok(provenix(["keygen", "--format", format, "--out", keyFile], env), "keygen");
    const salt = `cli-${format}-${Date.now()}`;
    const file = join(dir, `${format}.nix`);
    writeFileSync(file, `import ${BUILDS} { salt = "${salt}"; }`);
    const r = JSON.parse(
      ok(
        provenix(["attest", "--json", "--build", "--key", keyFile, file, "-A", "multi"], env),
        "attest --build",
      ).stdout,
    ) as { derivation: string; subjects: { name: string }[] }[];
    assert.equal(r[0]?.derivation, run("nix-instantiate", [file, "-A", "multi"]).trim());
    assert.equal(r[0]?.subjects.length, 3);
    const pub = keyFile.replace(/\.key$/, ".pub");
    const v = ok(
      provenix(["verify", "--key", pub, ...(r[0]?.subjects.map((s) => s.name) ?? [])], env),
      "verify outputs",
    );
    assert.equal(v.stdout.match(/^PASS /gm)?.length, 3);
    // The same build, attested again: the same statement and key, so nothing new is stored.
    const d = JSON.parse(
      ok(provenix(["attest", "--json", "--key", keyFile, file, "-A", "multi"], env), "attest again")
        .stdout,
    ) as { attestation: { inserted: boolean } }[];
    assert.equal(d[0]?.attestation.inserted, false);
    // The .drv on its own is another statement (no installable), so it is new.
    const e = JSON.parse(
      ok(
        provenix(["attest", "--json", "--key", keyFile, r[0]?.derivation ?? ""], env),
        "attest drv",
      ).stdout,
    ) as { attestation: { inserted: boolean } }[];
    assert.equal(e[0]?.attestation.inserted, true);
  }
});

test("bad input: one-line errors and documented exit codes, nothing written", () => {
  const env = cliHome();
  const dir = tempDir();
  ok(provenix(["keygen"], env), "keygen");
  fails(provenix(["attest", "./result"], env, dir), 3, /does not exist/);
  fails(provenix(["attest", "/nix/store/abc"], env), 3, /hash part/);
  fails(
    provenix(["attest", "/etc/hostname"], env),
    3,
    /outside the Nix store|not in the Nix store/,
  );
  fails(
    provenix(["attest", "/nix/store/00000000000000000000000000000000-gone"], env),
    3,
    /does not exist/,
  );
  fails(
    provenix(["attest", instantiate("app", `never-built-${Date.now()}`)], env),
    3,
    /is not built/,
  );

  // A truncated .drv in the store (Nix itself refuses to add a malformed one, so damage a real one).
  const drv = instantiate("escapes", `truncated-${Date.now()}`);
  const text = readFileSync(drv, "utf8");
  chmodSync(drv, 0o644);
  writeFileSync(drv, text.slice(0, 60));
  fails(provenix(["attest", drv], env), 3, /\.drv: expected closing '"'/);
  writeFileSync(drv, text);
  chmodSync(drv, 0o444);

  fails(provenix(["frobnicate"], env), 2, /unknown command/);
  fails(provenix(["attest", "--frob", "x"], env), 2, /Unknown option/);
  fails(provenix(["attest"], env), 2, /missing target/);

  const noKey = cliHome();
  fails(
    provenix(["attest", build("app")[0] as string], noKey),
    2,
    /no signing key .* 'provenix keygen'/,
  );
  const keyFile = join(dir, "open.key");
  ok(provenix(["keygen", "--out", keyFile], noKey), "keygen");
  chmodSync(keyFile, 0o644);
  fails(
    provenix(["attest", "--key", keyFile, build("app")[0] as string], noKey),
    4,
    /readable by group or others/,
  );

  const corrupt = join(dir, "corrupt.db");
  writeFileSync(corrupt, "garbage ".repeat(1000));
  const before = readFileSync(corrupt);
  fails(provenix(["attest", "--store", corrupt, build("app")[0] as string], env), 5, /corrupt/);
  assert.ok(readFileSync(corrupt).equals(before), "corrupt store left untouched");

  const badConfig = join(dir, "config.json");
  writeFileSync(badConfig, '{"stor": "x"}');
  fails(
    provenix(["verify", "--config", badConfig, "/nix/store/x"], env),
    2,
    /unknown setting 'stor'/,
  );
});

test("verify explains each failure: wrong key, tampered bundle, contents changed on disk, no provenance", () => {
  const env = cliHome();
  const dir = tempDir();
  ok(provenix(["keygen"], env), "keygen");
  const salt = `tamper-${Date.now()}`;
  const [out] = build("escapes", salt);
  ok(provenix(["attest", out as string], env), "attest");
  const bundleFile = join(dir, "b.sigstore.json");
  ok(provenix(["export", out as string, "-o", bundleFile], env), "export");

  // Nothing trusted but an unrelated key.
  const other = join(dir, "other.key");
  ok(provenix(["keygen", "--out", other, "--name", "other-1"], env), "keygen other");
  const cfg = join(dir, "cfg.json");
  writeFileSync(
    cfg,
    JSON.stringify({ trustedKeys: [other.replace(/\.key$/, ".pub")], useNixTrustedKeys: false }),
  );
  const wrong = provenix(["verify", "--config", cfg, out as string], env);
  assert.equal(wrong.code, 1);
  assert.match(
    wrong.stdout,
    /FAIL .*\n[\s\S]*reason: signature does not verify with any of 1 trusted key/,
  );

  const bundle = JSON.parse(readFileSync(bundleFile, "utf8")) as {
    dsseEnvelope: {
      payload: string;
      payloadType: string;
      signatures: { sig: string; keyid: string }[];
    };
  };
  const tampered: [string, (b: typeof bundle) => void, RegExp][] = [
    [
      "payload",
      (b) =>
        (b.dsseEnvelope.payload = Buffer.from(
          Buffer.from(b.dsseEnvelope.payload, "base64").toString().replace("escapes", "escapez"),
        ).toString("base64")),
      /signature does not verify/,
    ],
    [
      "signature",
      (b) => (b.dsseEnvelope.signatures[0]!.sig = Buffer.alloc(64, 1).toString("base64")),
      /signature does not verify/,
    ],
    [
      "payloadType",
      (b) => (b.dsseEnvelope.payloadType = "text/plain"),
      /payloadType is 'text\/plain'/,
    ],
    [
      "keyid",
      (b) => (b.dsseEnvelope.signatures[0]!.keyid = "mallory-1"),
      /differs from the DSSE keyid/,
    ],
  ];
  for (const [what, f, reason] of tampered) {
    const copy = structuredClone(bundle);
    f(copy);
    const file = join(dir, `${what}.sigstore.json`);
    writeFileSync(file, JSON.stringify(copy));
    const r = provenix(["verify", file], env);
    assert.equal(r.code, 1, what);
    assert.match(r.stdout, reason, what);
  }
  writeFileSync(join(dir, "trunc.json"), readFileSync(bundleFile).subarray(0, 100));
  const t = provenix(["verify", join(dir, "trunc.json")], env);
  assert.equal(t.code, 1);
  assert.match(t.stdout, /not valid JSON/);

  // Change the output's contents behind Nix's back.
  chmodSync(out as string, 0o644);
  writeFileSync(out as string, "changed\n");
  chmodSync(out as string, 0o444);
  const changed = provenix(["verify", out as string], env);
  assert.equal(changed.code, 1);
  assert.match(changed.stdout, /reason: contents of .* changed on disk/);
  run("nix-store", ["--repair-path", out as string]);

  const [unattested] = build("escapes", `${salt}-none`);
  const none = provenix(["verify", unattested as string], env);
  assert.equal(none.code, 1);
  assert.match(none.stdout, /reason: no provenance for/);
});

test("several provenix processes attest into one store at once", async () => {
  const env = cliHome();
  ok(provenix(["keygen"], env), "keygen");
  const salt = `parallel-${Date.now()}`;
  const outs = ["app", "multi", "structured", "tree", "escapes"].map(
    (a) => build(a, salt)[0] as string,
  );
  const results = await Promise.all(outs.map((o) => provenixAsync(["attest", "--json", o], env)));
  for (const r of results) ok(r, "parallel attest");
  const ids = results.map(
    (r) => (JSON.parse(r.stdout) as { attestation: { id: number } }[])[0]?.attestation.id,
  );
  assert.equal(new Set(ids).size, outs.length);
  for (const o of outs) ok(provenix(["verify", o], env), `verify ${o}`);
});

test("--help for provenix and each command documents usage and exit codes", () => {
  const env = cliHome();
  const top = ok(provenix(["--help"], env), "help");
  assert.match(top.stdout, /Exit codes:[\s\S]*3 +bad input/);
  for (const c of ["attest", "verify", "show", "export", "keygen"]) {
    assert.match(ok(provenix([c, "--help"], env), c).stdout, new RegExp(`Usage: provenix ${c}`));
  }
  assert.equal(provenix([], env).code, 2);
});

test("directories that cannot be made: no code cache, not a hang; a clear error for the store and keys", () => {
  const cacheHome = join(tempDir("provenix-cache-"), "cache");
  const env = { ...cliHome(), XDG_CACHE_HOME: cacheHome };
  assert.equal(provenix(["--version"], env).code, 0);
  assert.ok(readdirSync(join(cacheHome, "provenix", "v8")).length > 0, "cache written");
  assert.equal(statSync(join(cacheHome, "provenix")).mode & 0o777, 0o700);
  // Node's own recursive mkdir spins forever in /proc (mkdir there answers ENOENT).
  for (const where of ["/proc/provenix-test", "/etc/hostname/not-a-dir"]) {
    const r = spawnSync(process.execPath, [join(ROOT, "bin", "provenix.js"), "--version"], {
      env: { ...process.env, XDG_CACHE_HOME: where },
      encoding: "utf8",
      timeout: 20_000,
    });
    assert.equal(r.status, 0, `${where}: ${r.error?.message ?? r.stderr}`);
  }
  const guarded = (args: string[]) =>
    spawnSync(process.execPath, [join(ROOT, "bin", "provenix.js"), ...args], {
      env: clean(cliHome()),
      encoding: "utf8",
      timeout: 20_000,
    });
  const store = guarded(["status", "--store", "/proc/provenix-test/a.db"]);
  assert.equal(store.status, 5, store.error?.message ?? store.stderr);
  assert.ok(isOneLineError({ code: store.status ?? -1, stdout: "", stderr: store.stderr }));
  const key = guarded(["keygen", "--out", "/proc/provenix-test/k.key"]);
  assert.equal(key.status, 4, key.error?.message ?? key.stderr);
  assert.equal(key.stderr, "provenix: cannot create /proc/provenix-test: ENOENT\n");
});

test("a flake installable: externalParameters name it, resolvedDependencies pin its locked source", () => {
  const env = cliHome();
  ok(provenix(["keygen"], env), "keygen");
  const dir = tempDir();
  const salt = `flake-${Date.now()}`;
  // Flakes evaluate purely: the flake carries its own copy of the fixtures.
  for (const f of ["builds.nix", "input.txt"])
    writeFileSync(join(dir, f), readFileSync(join(FIXTURES, f)));
  const system = run("nix", ["eval", "--raw", "--impure", "--expr", "builtins.currentSystem"]);
  writeFileSync(
    join(dir, "flake.nix"),
    `{ outputs = { self }: { packages.${system}.multi = (import ./builds.nix { salt = "${salt}"; system = "${system}"; }).multi; }; }`,
  );
  const ref = `path:${dir}#packages.${system}.multi`;
  const r = JSON.parse(
    ok(provenix(["attest", "--json", "--build", ref], env), "attest flake").stdout,
  ) as { subjects: { name: string }[] }[];
  const shown = JSON.parse(
    ok(provenix(["show", "--json", r[0]?.subjects[0]?.name ?? ""], env), "show").stdout,
  ) as {
    attestations: {
      statement: {
        predicate: {
          buildDefinition: {
            externalParameters: Record<string, unknown>;
            resolvedDependencies: {
              name: string;
              uri?: string;
              digest: { sha256: string };
              annotations: Record<string, unknown>;
            }[];
          };
        };
      };
    }[];
  };
  const def = shown.attestations[0]?.statement.predicate.buildDefinition;
  assert.equal(def?.externalParameters.installable, ref);
  const flake = def?.resolvedDependencies.find((d) => d.annotations["nix.kind"] === "flake");
  const meta = JSON.parse(
    run("nix", [
      "--extra-experimental-features",
      "nix-command flakes",
      "flake",
      "metadata",
      "--json",
      `path:${dir}`,
    ]),
  ) as { path: string; url: string };
  assert.equal(flake?.name, meta.path);
  assert.equal(flake?.uri, meta.url);
  assert.equal(
    flake?.digest.sha256,
    run("nix", ["hash", "path", "--base16", "--type", "sha256", meta.path]).trim(),
  );
});

test("store location: --store beats PROVENIX_STORE beats the config file beats the XDG default", () => {
  const env = cliHome();
  ok(provenix(["keygen"], env), "keygen");
  const dir = tempDir();
  const [out] = build("escapes");
  const config = join(dir, "config.json");
  writeFileSync(config, JSON.stringify({ store: join(dir, "from-config.db") }));
  const where = (args: string[], e: NodeJS.ProcessEnv) =>
    (
      JSON.parse(
        ok(provenix(["attest", "--json", ...args, out as string], e), "attest").stdout,
      ) as { attestation: { store: string } }[]
    )[0]?.attestation.store;
  assert.equal(where([], env), join(env.XDG_DATA_HOME as string, "provenix", "attestations.db"));
  assert.equal(where(["--config", config], env), join(dir, "from-config.db"));
  assert.equal(
    where(["--config", config], { ...env, PROVENIX_STORE: join(dir, "from-env.db") }),
    join(dir, "from-env.db"),
  );
  assert.equal(
    where(["--config", config, "--store", join(dir, "flag.db")], {
      ...env,
      PROVENIX_STORE: join(dir, "from-env.db"),
    }),
    join(dir, "flag.db"),
  );
});

test("verify --builder-id accepts only the expected builder", () => {
  const env = cliHome();
  ok(provenix(["keygen"], env), "keygen");
  const [out] = build("escapes");
  ok(
    provenix(["attest", "--builder-id", "https://ci.example/builders/a", out as string], env),
    "attest",
  );
  ok(
    provenix(["verify", "--builder-id", "https://ci.example/builders/a", out as string], env),
    "expected builder",
  );
  const r = provenix(
    ["verify", "--builder-id", "https://ci.example/builders/b", out as string],
    env,
  );
  assert.equal(r.code, 1);
  assert.match(
    r.stdout,
    /reason: builder.id 'https:\/\/ci.example\/builders\/a' is not one of the expected builders/,
  );
});
