// Provenance in Nix binary caches, with real components: Nix writes the cache
// (`nix copy --to file://` with a signing key), nginx serves it with WebDAV PUT for
// provenix publish, Python's http.server serves it read-only, Nix substitutes from it
// into a fresh store, and provenix verifies closures from the cache alone.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import test from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { DEFAULT_RETRY } from "../../src/chains/index.js";
import { cliHome, isOneLineError, provenix, provenixAsync } from "../helpers/cli.js";
import { Daemon } from "../helpers/daemon.js";
import { nginxCache, staticCache } from "../helpers/http-cache.js";
import { build, run, tempDir, useTestNix } from "../helpers/nix.js";
import { FaultProxy } from "../helpers/registry.js";

useTestNix();
const SALT = `cache-${process.pid}-${Date.now()}`;

interface Verified {
  root: string;
  ok: boolean;
  paths: { path: string; ok: boolean; reason?: string; narinfoKey?: string; cache?: string }[];
}

/** A provenix home with a signing key, and a binary-cache key pair made by Nix. */
function homeAndCacheKey() {
  const env = cliHome();
  assert.equal(provenix(["keygen"], env).code, 0);
  const dir = tempDir();
  const secretKey = join(dir, "cache.sk");
  run("nix-store", [
    "--generate-binary-cache-key",
    "cache-test-1",
    secretKey,
    join(dir, "cache.pk"),
  ]);
  return { env, secretKey, cacheKey: readFileSync(join(dir, "cache.pk"), "utf8").trim() };
}

/** A builder: its provenix home, a cache signing key, and the app fixture built and attested. */
function builder(salt: string) {
  const keys = homeAndCacheKey();
  const [app = ""] = build("app", salt);
  const closure = run("nix-store", ["--query", "--requisites", app]).trim().split("\n");
  const a = provenix(["attest", ...closure], keys.env);
  assert.equal(a.code, 0, a.stderr);
  return { ...keys, app, closure };
}

function nixCopyTo(cacheDir: string, secretKey: string, ...paths: string[]) {
  run("nix", [
    "--extra-experimental-features",
    "nix-command",
    "copy",
    "--to",
    `file://${cacheDir}?secret-key=${secretKey}`,
    ...paths,
  ]);
}

/** A verifier elsewhere: trusts the builder's provenix key and the cache key, nothing else. */
function consumer(b: ReturnType<typeof builder>): string[] {
  const pub = readFileSync(join(b.env.XDG_CONFIG_HOME ?? "", "provenix", "signing.pub"), "utf8");
  return ["--no-nix-keys", "--trusted-key", pub.trim(), "--cache-key", b.cacheKey];
}

test("publish to an nginx cache by PUT; verify the closure from it over HTTP before it is installed; Nix copies and substitutes from the cache unchanged", async (t) => {
  const b = builder(`${SALT}-a`);
  const cacheDir = tempDir("provenix-cache-");
  nixCopyTo(cacheDir, b.secretKey, b.app);
  const nginx = await nginxCache(t, cacheDir);

  const first = await provenixAsync(
    ["publish", "--json", "--closure", "--to", nginx.url, b.app],
    b.env,
  );
  assert.equal(first.code, 0, first.stderr);
  const pub = JSON.parse(first.stdout) as { paths: { path: string; result: string }[] };
  assert.deepEqual(
    pub.paths.map((p) => p.result),
    b.closure.map(() => "published"),
  );
  const files = readdirSync(cacheDir).filter((f) => f.endsWith(".attestations"));
  assert.equal(files.length, b.closure.length);
  const index = join(cacheDir, files[0] as string);
  const before = statSync(index).mtimeMs;
  const again = await provenixAsync(
    ["publish", "--json", "--closure", "--to", nginx.url, b.app],
    b.env,
  );
  assert.deepEqual(
    (JSON.parse(again.stdout) as { paths: { result: string }[] }).paths.map((p) => p.result),
    b.closure.map(() => "current"),
    "publishing again writes nothing",
  );
  assert.equal(statSync(index).mtimeMs, before);

  // The verifier's store need not have the closure: everything comes from the cache.
  const v = await provenixAsync(
    ["verify", "--json", "--from", nginx.url, "--closure", ...consumer(b), b.app],
    cliHome(),
  );
  assert.equal(v.code, 0, v.stdout);
  const [res] = JSON.parse(v.stdout) as Verified[];
  assert.deepEqual(
    res?.paths.map((p) => [p.path, p.ok, p.narinfoKey]).sort(),
    b.closure.map((p) => [p, true, "cache-test-1"]).sort(),
  );

  // Kept locally from the cache: later verify (and consensus) see them.
  const here = cliHome();
  const imported = await provenixAsync(
    ["import", "--json", "--from", nginx.url, ...consumer(b), b.app],
    here,
  );
  assert.equal(imported.code, 0, imported.stdout + imported.stderr);
  const kept = JSON.parse(imported.stdout) as {
    paths: { bundles: { predicateType: string; kept?: { inserted: boolean } }[] }[];
  };
  assert.deepEqual(
    kept.paths[0]?.bundles.map((x) => [x.predicateType, x.kept?.inserted]),
    [["https://slsa.dev/provenance/v1", true]],
  );
  const local = provenix(["verify", "--json", ...consumer(b).slice(0, 3), b.app], here);
  assert.equal(local.code, 0, local.stdout);
  const twice = await provenixAsync(["import", "--from", nginx.url, ...consumer(b), b.app], here);
  assert.match(twice.stdout, /already stored/);

  // Nix itself: the cache still verifies, and a fresh store substitutes from it with signatures required.
  const fresh = tempDir("provenix-fresh-store-");
  const sub = spawnSync(
    "nix-store",
    [
      "--store",
      fresh,
      "--realise",
      b.app,
      "--option",
      "substituters",
      nginx.url,
      "--option",
      "trusted-public-keys",
      b.cacheKey,
      "--option",
      "require-sigs",
      "true",
    ],
    { encoding: "utf8" },
  );
  assert.equal(sub.status, 0, sub.stderr);
  assert.ok(
    statSync(join(fresh, b.app.slice(1))).isDirectory(),
    "substituted into the fresh store",
  );
  const nixVerify = spawnSync(
    "nix",
    [
      "--extra-experimental-features",
      "nix-command",
      "store",
      "verify",
      "--store",
      `file://${cacheDir}`,
      "--trusted-public-keys",
      b.cacheKey,
      "-r",
      b.app,
    ],
    { encoding: "utf8" },
  );
  assert.equal(nixVerify.status, 0, nixVerify.stderr);
});

test("verify --from a read-only cache: a missing attestation, a tampered narinfo, a tampered bundle, a bundle about another path, a path not in the cache; 500 and a hang are one-line errors", async (t) => {
  const b = builder(`${SALT}-b`);
  const cacheDir = tempDir("provenix-cache-");
  nixCopyTo(cacheDir, b.secretKey, b.app);
  assert.equal(
    provenix(["publish", "--closure", "--to", `file://${cacheDir}`, b.app], b.env).code,
    0,
  );
  // --all: everything attested here that a cache has, read from the store's subjects.
  const second = tempDir("provenix-cache-all-");
  nixCopyTo(second, b.secretKey, b.app);
  const all = provenix(["publish", "--json", "--all", "--to", `file://${second}`], b.env);
  assert.equal(all.code, 0, all.stderr);
  assert.deepEqual(
    (JSON.parse(all.stdout) as { paths: { path: string; result: string }[] }).paths.map((p) => [
      p.path,
      p.result,
    ]),
    [...b.closure].sort().map((p) => [p, "published"]),
  );
  const [libB] = b.closure.filter((p) => p !== b.app);
  const hash = (p: string) => p.slice("/nix/store/".length, "/nix/store/".length + 32);
  const http = await staticCache(t, cacheDir);
  const ok = await provenixAsync(
    ["verify", "--from", http.url, "--closure", ...consumer(b), b.app],
    cliHome(),
  );
  assert.equal(ok.code, 0, ok.stdout);
  assert.match(ok.stdout, /^PASS .* 2 of 2 path\(s\) verified/);

  /** A copy of the cache with one change, served read-only. */
  const variant = async (change: (dir: string) => void) => {
    const dir = tempDir("provenix-cache-variant-");
    cpSync(cacheDir, dir, { recursive: true });
    change(dir);
    const s = await staticCache(t, dir);
    const r = await provenixAsync(
      ["verify", "--json", "--from", s.url, "--closure", ...consumer(b), b.app],
      cliHome(),
    );
    assert.equal(r.code, 1, r.stdout + r.stderr);
    return (JSON.parse(r.stdout) as Verified[])[0]?.paths ?? [];
  };
  const reasonOf = (paths: Verified["paths"], p: string) =>
    paths.find((x) => x.path === p)?.reason ?? "";

  const missing = await variant((d) => writeFileSync(join(d, `${hash(libB!)}.attestations`), "{}"));
  assert.match(reasonOf(missing, libB!), /is not layout version 1/);
  const gone = await variant((d) => {
    for (const f of readdirSync(d))
      if (f === `${hash(libB!)}.attestations`) writeFileSync(join(d, f), "");
  });
  assert.match(reasonOf(gone, libB!), /not JSON/);
  const noIndex = await variant((d) => spawnSync("rm", [join(d, `${hash(libB!)}.attestations`)]));
  assert.match(reasonOf(noIndex, libB!), /no attestations for .* in http/);
  assert.equal(noIndex.find((p) => p.path === b.app)?.ok, true, "the rest still verifies");

  const narinfo = await variant((d) => {
    const f = join(d, `${hash(b.app)}.narinfo`);
    const text = readFileSync(f, "utf8").replace(
      /NarSize: (\d+)/,
      (_, n: string) => `NarSize: ${Number(n) + 1}`,
    );
    writeFileSync(f, text);
  });
  assert.match(
    reasonOf(narinfo, b.app),
    /the narinfo of .* has no signature by a trusted cache key/,
  );

  const bundle = await variant((d) => {
    const sub = join(d, "attestations", hash(b.app));
    const [file] = readdirSync(sub);
    const json = JSON.parse(readFileSync(join(sub, file!), "utf8")) as {
      dsseEnvelope: { payload: string };
    };
    const st = JSON.parse(Buffer.from(json.dsseEnvelope.payload, "base64").toString()) as {
      predicate: { runDetails: { builder: { id: string } } };
    };
    st.predicate.runDetails.builder.id = "https://attacker.example/";
    json.dsseEnvelope.payload = Buffer.from(JSON.stringify(st)).toString("base64");
    writeFileSync(join(sub, file!), JSON.stringify(json));
  });
  assert.match(reasonOf(bundle, b.app), /does not have the sha256 its name says/);

  const swapped = await variant((d) => {
    // libB's index and bundles, filed under the app: signed, but about another path.
    const idx = JSON.parse(readFileSync(join(d, `${hash(libB!)}.attestations`), "utf8")) as {
      storePath: string;
      attestations: { file: string }[];
    };
    for (const e of idx.attestations) {
      const to = e.file.replace(hash(libB!), hash(b.app));
      cpSync(join(d, e.file), join(d, to));
      e.file = to;
    }
    idx.storePath = b.app;
    writeFileSync(join(d, `${hash(b.app)}.attestations`), JSON.stringify(idx));
  });
  assert.match(reasonOf(swapped, b.app), /attestation has no subject named/);

  const absent = await provenixAsync(
    ["verify", "--from", http.url, ...consumer(b), b.app.replace(hash(b.app), "0".repeat(32))],
    cliHome(),
  );
  assert.equal(absent.code, 1);
  assert.match(absent.stdout, /is not in http:\/\/127\.0\.0\.1:\d+ \(no 0{32}\.narinfo\)/);

  for (const [fault, reason] of [
    [{ kind: "status", status: 500 }, /HTTP 500/],
    [{ kind: "hang" }, /no answer within 2 s/],
  ] as const) {
    const proxy = await FaultProxy.start(t, http.url.replace("http://", ""), () => fault);
    const r = await provenixAsync(
      ["verify", "--from", `http://${proxy.host}`, "--cache-timeout", "2", ...consumer(b), b.app],
      cliHome(),
    );
    assert.equal(r.code, 7, r.stdout + r.stderr);
    assert.ok(isOneLineError(r), r.stderr);
    assert.match(r.stderr, reason);
  }

  // A read-only cache refuses the upload: a one-line error, exit 7, nothing reported
  // published. (A second builder, so that there is something new to upload.)
  const other = cliHome();
  assert.equal(provenix(["keygen"], other).code, 0);
  assert.equal(provenix(["attest", b.app], other).code, 0);
  const refused = await provenixAsync(["publish", "--to", http.url, b.app], other);
  assert.equal(refused.code, 7, refused.stdout + refused.stderr);
  assert.ok(isOneLineError(refused), refused.stderr);
  assert.match(refused.stderr, /PUT .*: HTTP 501/);
  assert.doesNotMatch(refused.stdout, /published/);
});

test("verify --from --policy: a closure from the cache against a policy (provenance, or the cache's signature where the policy trusts it), with a VSA; --from-substituters takes the caches from Nix's configuration", async (t) => {
  const b = builder(`${SALT}-c`);
  const cacheDir = tempDir("provenix-cache-");
  nixCopyTo(cacheDir, b.secretKey, b.app);
  // Only the app's attestations travel: libB has none in the cache.
  assert.equal(provenix(["publish", "--to", `file://${cacheDir}`, b.app], b.env).code, 0);
  const [libB = ""] = b.closure.filter((p) => p !== b.app);
  const http = await staticCache(t, cacheDir);
  const pub = readFileSync(join(b.env.XDG_CONFIG_HOME ?? "", "provenix", "signing.pub"), "utf8");
  const dir = tempDir();
  const policy = (name: string, extra = "") => {
    const f = join(dir, name);
    writeFileSync(
      f,
      `apiVersion: provenix.dev/policy/v1\nbuilders:\n  - keys: ["${pub.trim()}"]\n${extra}`,
    );
    return f;
  };
  interface PolicyOut {
    ok: boolean;
    from: string[];
    paths: { path: string; ok: boolean; basis?: string; reason?: string; detail?: string }[];
  }
  const consumerHome = cliHome();
  assert.equal(provenix(["keygen"], consumerHome).code, 0);
  const check = async (args: string[], code: number) => {
    const r = await provenixAsync(
      ["verify", "--json", "--no-nix-keys", "--cache-key", b.cacheKey, "--closure", ...args, b.app],
      consumerHome,
    );
    assert.equal(r.code, code, r.stdout + r.stderr);
    return JSON.parse(r.stdout) as PolicyOut;
  };

  const strict = await check(["--from", http.url, "--policy", policy("strict.yaml")], 1);
  assert.deepEqual(strict.from, [http.url]);
  const byPath = (o: PolicyOut, p: string) => o.paths.find((x) => x.path === p);
  assert.equal(byPath(strict, b.app)?.basis, "provenance");
  assert.equal(byPath(strict, libB)?.ok, false);
  assert.match(byPath(strict, libB)?.reason ?? "", /no provenance for .*libb/);

  // The policy trusts the cache's key for substituted paths: libB passes on the narinfo.
  const vsa = join(dir, "app.vsa.json");
  const lenient = policy("lenient.yaml", `substituters:\n  keys: ["${b.cacheKey}"]\n`);
  const ok = await check(["--from", http.url, "--policy", lenient, "--emit-vsa", vsa], 0);
  assert.deepEqual(
    ok.paths.map((p) => [p.path, p.basis]),
    [
      [b.app, "provenance"],
      [libB, "substituted"],
    ],
  );
  assert.equal(byPath(ok, libB)?.detail, "narinfo signed by cache-test-1");
  // The VSA names the NAR hash of the cache's narinfo: the local copy's (Nix's record) matches.
  const consumerPub = readFileSync(
    join(consumerHome.XDG_CONFIG_HOME ?? "", "provenix", "signing.pub"),
    "utf8",
  ).trim();
  const checked = provenix(
    ["verify", "--no-nix-keys", "--trusted-key", consumerPub, "--vsa", vsa, b.app],
    consumerHome,
  );
  assert.equal(checked.code, 0, checked.stdout + checked.stderr);

  // A cache key the consumer does not trust: every path fails with the narinfo reason.
  const untrusted = await provenixAsync(
    ["verify", "--json", "--no-nix-keys", "--from", http.url, "--policy", lenient, b.app],
    consumerHome,
  );
  assert.equal(untrusted.code, 1);
  assert.match(
    (JSON.parse(untrusted.stdout) as PolicyOut).paths[0]?.reason ?? "",
    /has no signature by a trusted cache key/,
  );

  // Nix's substituters, in order: an empty cache first, then this one.
  const empty = tempDir("provenix-cache-empty-");
  const env = {
    ...consumerHome,
    NIX_CONFIG: `substituters = file://${empty}?priority=10 ${http.url}`,
  };
  const subst = await provenixAsync(
    [
      "verify",
      "--json",
      "--no-nix-keys",
      "--cache-key",
      b.cacheKey,
      "--trusted-key",
      pub.trim(),
      "--from-substituters",
      "--closure",
      b.app,
    ],
    env,
  );
  assert.equal(subst.code, 1, subst.stdout + subst.stderr);
  const [res] = JSON.parse(subst.stdout) as (Verified & { cache: string })[];
  assert.equal(res?.cache, `file://${empty}, ${http.url}`);
  assert.deepEqual(
    res?.paths.map((p) => [p.path, p.ok, p.cache]),
    [
      [b.app, true, http.url],
      [libB, false, http.url],
    ],
  );
  const both = await provenixAsync(
    ["verify", "--from", http.url, "--from-substituters", b.app],
    env,
  );
  assert.equal(both.code, 2);
  assert.ok(isOneLineError(both), both.stderr);
});

test("daemon --publish-to: attested outputs are queued with their attestation, published once the cache has them, and a kill -9 mid-publication loses nothing", async (t) => {
  const { env, secretKey, cacheKey } = homeAndCacheKey();
  const cacheDir = tempDir("provenix-cache-");
  // The first daemon's cache never answers: it is killed while publishing.
  const hang = await FaultProxy.start(t, "127.0.0.1:9", () => ({ kind: "hang" }));
  const first = Daemon.start(
    t,
    [
      "--no-gc-roots",
      "--poll",
      "100",
      "--publish-to",
      `http://${hang.host}`,
      "--cache-timeout",
      "120",
    ],
    env,
  );
  await first.waitFor((e) => e.event === "started", "start");
  const [app = ""] = build("app", `${SALT}-daemon`);
  await first.waitFor((e) => e.event === "attested" && e.path === app, "the app attested");
  for (let i = 0; i < 100 && hang.hits === 0; i++) await sleep(100);
  assert.ok(hang.hits > 0, "the daemon was publishing when it was killed");
  await first.stop("SIGKILL");

  const status = () =>
    (
      JSON.parse(provenix(["status", "--json"], env).stdout) as {
        publications: {
          counts: Record<string, number>;
          recent: { path: string; status: string }[];
        };
      }
    ).publications;
  const queued = status();
  assert.ok(
    queued.recent.some((r) => r.path === app && r.status === "pending"),
    JSON.stringify(queued),
  );

  // Not in the cache yet: retried, not reported published.
  const once = (log?: string) =>
    Daemon.start(t, ["--no-gc-roots", "--once", "--publish-to", `file://${cacheDir}`], env, log);
  const second = once();
  await second.wait();
  const retry = second.events().find((e) => e.event === "publish-retry" && e.path === app);
  assert.match(String(retry?.error), /is not in file:.* \(no narinfo yet\)/);
  assert.ok(!second.events().some((e) => e.event === "published"));

  // The cache gets the closure (as a post-build hook or a farm would copy it); the next
  // pass, once the backoff is over, publishes.
  nixCopyTo(cacheDir, secretKey, app);
  await sleep(DEFAULT_RETRY.baseMs + 200);
  const third = once();
  await third.wait();
  const published = third
    .events()
    .filter((e) => e.event === "published")
    .map((e) => e.path);
  const closure = run("nix-store", ["--query", "--requisites", app]).trim().split("\n");
  assert.deepEqual([...published].sort(), [...closure].sort());
  assert.equal(status().counts.pushed, closure.length);

  const pub = readFileSync(join(env.XDG_CONFIG_HOME ?? "", "provenix", "signing.pub"), "utf8");
  const v = await provenixAsync(
    [
      "verify",
      "--from",
      `file://${cacheDir}`,
      "--closure",
      "--no-nix-keys",
      "--cache-key",
      cacheKey,
      "--trusted-key",
      pub.trim(),
      app,
    ],
    cliHome(),
  );
  assert.equal(v.code, 0, v.stdout + v.stderr);
});
