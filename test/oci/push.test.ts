// provenix push / verify oci:// against a real registry (Debian's docker-registry),
// checked with Debian's skopeo as an independent client.
import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import test from "node:test";
import { ociDigest } from "../../src/oci/index.js";
import { promisify } from "node:util";
import { setTimeout as sleep } from "node:timers/promises";
import {
  cliHome,
  isOneLineError,
  provenix,
  provenixAsync,
  type CliResult,
} from "../helpers/cli.js";
import { FIXTURES, run, tempDir, useTestNix } from "../helpers/nix.js";
import { FaultProxy, freePort, Registry } from "../helpers/registry.js";
import { Daemon } from "../helpers/daemon.js";

useTestNix();
const IMAGES = join(FIXTURES, "images.nix");
const SALT = `oci-${process.pid}-${Date.now()}`;
const image = (attr: string, salt = SALT, extra: string[] = []) =>
  run("nix-build", [
    IMAGES,
    "-A",
    attr,
    "--argstr",
    "salt",
    salt,
    "--no-out-link",
    ...extra,
  ]).trim();

function home(): NodeJS.ProcessEnv {
  const env = cliHome();
  assert.equal(provenix(["keygen"], env).code, 0);
  return env;
}

function skopeo(...args: string[]): string {
  const r = spawnSync("skopeo", args, { encoding: "utf8" });
  assert.equal(r.status, 0, `skopeo ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

/** The token issuer and the fault proxies run in this process: run provenix without blocking it. */
const pv = provenixAsync;

interface PushJson {
  image: string;
  manifest: { digest: string };
  blobs: { result: string }[];
  referrer?: { referrer: string; via: string; cosignTag?: string };
}

async function pushJson(
  env: NodeJS.ProcessEnv,
  args: string[],
  stdin?: string,
): Promise<{ r: CliResult; out: PushJson }> {
  const r = await pv(["push", "--json", ...args], env, stdin);
  return { r, out: r.code === 0 ? (JSON.parse(r.stdout) as PushJson) : ({} as PushJson) };
}

test("push a docker-archive (tar and tar.gz): skopeo reads it back layer for layer, config byte-identical; a second push uploads nothing", async (t) => {
  const reg = await Registry.start(t);
  const env = home();
  const archive = image("archive");
  const first = await pushJson(env, ["--plain-http", archive, `${reg.host}/nix/app:v1`]);
  assert.equal(first.r.code, 0, first.r.stderr);
  assert.deepEqual(
    first.out.blobs.map((b) => b.result),
    ["uploaded", "uploaded", "uploaded"],
  );

  const raw = skopeo("inspect", "--raw", "--tls-verify=false", `docker://${reg.host}/nix/app:v1`);
  assert.equal(
    ociDigest(Buffer.from(raw)),
    first.out.manifest.digest,
    "the digest provenix reports is the registry's",
  );
  const manifest = JSON.parse(raw) as {
    mediaType: string;
    config: { digest: string };
    layers: { digest: string; mediaType: string }[];
  };
  assert.equal(manifest.mediaType, "application/vnd.oci.image.manifest.v1+json");
  // Copy it back out with skopeo: same config bytes, same layer digests (= the archive's diff_ids).
  const back = join(tempDir(), "back.tar");
  skopeo(
    "copy",
    "--src-tls-verify=false",
    `docker://${reg.host}/nix/app:v1`,
    `docker-archive:${back}`,
  );
  const list = (tar: string) => run("tar", ["-tf", tar]).split("\n").filter(Boolean);
  const configName = (tar: string) =>
    list(tar).find((n) => /^[0-9a-f]{64}\.json$/.test(n.replace(/^\.\//, ""))) ?? "";
  const cat = (tar: string, name: string) =>
    spawnSync("tar", ["-xOf", tar, name], { maxBuffer: 1 << 26 }).stdout;
  assert.equal(
    ociDigest(cat(back, configName(back))),
    ociDigest(cat(archive, configName(archive))),
  );
  assert.equal(manifest.config.digest, ociDigest(cat(archive, configName(archive))));
  const diffIds = (
    JSON.parse(cat(archive, configName(archive)).toString()) as { rootfs: { diff_ids: string[] } }
  ).rootfs.diff_ids;
  assert.deepEqual(
    manifest.layers.map((l) => l.digest),
    diffIds,
  );

  const again = await pushJson(env, [
    "--plain-http",
    "--no-attest",
    archive,
    `${reg.host}/nix/app:v1`,
  ]);
  assert.deepEqual(
    again.out.blobs.map((b) => b.result),
    ["exists", "exists", "exists"],
  );
  // Mounted from the first repository into a second one.
  const mounted = await pushJson(env, [
    "--plain-http",
    "--no-attest",
    "--mount-from",
    "nix/app",
    archive,
    `${reg.host}/nix/copy:v1`,
  ]);
  assert.deepEqual(
    mounted.out.blobs.map((b) => b.result),
    ["mounted", "mounted", "mounted"],
  );

  const gz = await pushJson(env, [
    "--plain-http",
    "--no-attest",
    image("archiveGz"),
    `${reg.host}/nix/gz:v1`,
  ]);
  assert.equal(gz.r.code, 0, gz.r.stderr);
  assert.equal(
    gz.out.manifest.digest,
    first.out.manifest.digest,
    "the same image, compressed or not",
  );

  // Docker v2 schema 2 for older clients: gzip layers, the same config, provenance attached.
  const docker = await pushJson(env, [
    "--plain-http",
    "--manifest-format",
    "docker",
    archive,
    `${reg.host}/nix/docker:v1`,
  ]);
  assert.equal(docker.r.code, 0, docker.r.stderr);
  const v2 = JSON.parse(
    skopeo("inspect", "--raw", "--tls-verify=false", `docker://${reg.host}/nix/docker:v1`),
  ) as {
    mediaType: string;
    config: { digest: string; mediaType: string };
    layers: { mediaType: string }[];
  };
  assert.equal(v2.mediaType, "application/vnd.docker.distribution.manifest.v2+json");
  assert.equal(v2.config.mediaType, "application/vnd.docker.container.image.v1+json");
  assert.equal(v2.config.digest, manifest.config.digest);
  assert.deepEqual(
    v2.layers.map((l) => l.mediaType),
    diffIds.map(() => "application/vnd.docker.image.rootfs.diff.tar.gzip"),
  );
  const back2 = join(tempDir(), "back2.tar");
  skopeo(
    "copy",
    "--src-tls-verify=false",
    `docker://${reg.host}/nix/docker:v1`,
    `docker-archive:${back2}`,
  );
  const config2 = JSON.parse(cat(back2, configName(back2)).toString()) as {
    rootfs: { diff_ids: string[] };
  };
  assert.deepEqual(config2.rootfs.diff_ids, diffIds, "gunzipped, the layers are the archive's");
  const verified = await pv(["verify", "--plain-http", `oci://${reg.host}/nix/docker:v1`], env);
  assert.equal(verified.code, 0, verified.stdout + verified.stderr);
});

test("chunked uploads, OCI layouts and stream scripts", async (t) => {
  const reg = await Registry.start(t);
  const env = { ...home(), PROVENIX_CHUNK_MB: "1", PROVENIX_MONOLITHIC_MB: "1" };
  const big = image("archive", `${SALT}-big`, ["--arg", "bigMb", "3"]);
  const r = await pushJson(env, ["--plain-http", big, `${reg.host}/nix/big:v1`]);
  assert.equal(r.r.code, 0, r.r.stderr);
  skopeo("copy", "--src-tls-verify=false", `docker://${reg.host}/nix/big:v1`, `dir:${tempDir()}`);

  const layout = image("ociLayout");
  const own = JSON.parse(readFileSync(join(layout, "index.json"), "utf8")) as {
    manifests: { digest: string }[];
  };
  const l = await pushJson(env, ["--plain-http", layout, `${reg.host}/nix/layout:v1`]);
  assert.equal(l.r.code, 0, l.r.stderr);
  assert.equal(
    l.out.manifest.digest,
    own.manifests[0]?.digest,
    "an OCI layout's manifest is pushed byte for byte",
  );

  const s = await pushJson(env, [
    "--plain-http",
    "--stream",
    image("stream"),
    `${reg.host}/nix/stream:v1`,
  ]);
  assert.equal(s.r.code, 0, s.r.stderr);
  assert.equal(
    s.out.manifest.digest,
    (
      await pushJson(env, [
        "--plain-http",
        "--no-attest",
        image("archive"),
        `${reg.host}/nix/plain:v1`,
      ])
    ).out.manifest.digest,
  );
});

test("provenance attached as an OCI 1.1 referrer: found through the referrers tag, verified; no duplicates; concurrent attaches both survive; cosign's .att", async (t) => {
  const reg = await Registry.start(t);
  const a = home();
  const archive = image("archive", `${SALT}-ref`);
  const ref = `${reg.host}/nix/ref:v1`;
  const p = await pushJson(a, ["--plain-http", "--cosign-att", archive, ref]);
  assert.equal(p.r.code, 0, p.r.stderr);
  assert.equal(p.out.referrer?.via, "referrers-tag", "distribution 2.8 has no referrers API");
  const digest = p.out.manifest.digest;
  const tag = digest.replace(":", "-");
  const index = JSON.parse(
    skopeo("inspect", "--raw", "--tls-verify=false", `docker://${reg.host}/nix/ref:${tag}`),
  ) as { manifests: { digest: string; artifactType: string }[] };
  assert.deepEqual(
    index.manifests.map((m) => [m.digest, m.artifactType]),
    [[p.out.referrer?.referrer, "application/vnd.dev.sigstore.bundle.v0.3+json"]],
  );
  const referrer = JSON.parse(
    skopeo(
      "inspect",
      "--raw",
      "--tls-verify=false",
      `docker://${reg.host}/nix/ref@${p.out.referrer?.referrer ?? ""}`,
    ),
  ) as {
    artifactType: string;
    subject: { digest: string };
    config: { mediaType: string };
    annotations: Record<string, string>;
  };
  assert.equal(referrer.subject.digest, digest);
  assert.equal(referrer.config.mediaType, "application/vnd.oci.empty.v1+json");
  assert.equal(
    referrer.annotations["dev.sigstore.bundle.predicateType"],
    "https://slsa.dev/provenance/v1",
  );
  const att = JSON.parse(
    skopeo("inspect", "--raw", "--tls-verify=false", `docker://${reg.host}/nix/ref:${tag}.att`),
  ) as { layers: { mediaType: string }[] };
  assert.deepEqual(
    att.layers.map((l) => l.mediaType),
    ["application/vnd.dsse.envelope.v1+json"],
  );

  for (const target of [`oci://${ref}`, `oci://${reg.host}/nix/ref@${digest}`]) {
    const v = await pv(["verify", "--plain-http", target], a);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    assert.match(v.stdout, /^PASS /);
  }
  // Attaching the same image again (same provenance, same key) adds nothing.
  assert.equal((await pushJson(a, ["--plain-http", archive, ref])).r.code, 0);
  const count = () =>
    (
      JSON.parse(
        skopeo("inspect", "--raw", "--tls-verify=false", `docker://${reg.host}/nix/ref:${tag}`),
      ) as { manifests: unknown[] }
    ).manifests.length;
  assert.equal(count(), 1);
  // Two builders attach at once: both referrers survive.
  const [b, c] = [home(), home()];
  const rs = await Promise.all(
    [b, c].map((env) => provenixAsync(["push", "--plain-http", "--quiet", archive, ref], env)),
  );
  for (const r of rs) assert.equal(r.code, 0, r.stderr);
  assert.equal(count(), 3);
  // The registry as a source of claims: three builders agree on the archive's NAR hash.
  const pub = (env: NodeJS.ProcessEnv) =>
    readFileSync(join(env.XDG_CONFIG_HOME ?? "", "provenix", "signing.pub"), "utf8").trim();
  const fresh = cliHome();
  const cons = await pv(
    [
      "consensus",
      "--json",
      "--plain-http",
      "--oci",
      `oci://${ref}`,
      archive,
      ...[a, b, c].flatMap((e) => ["--trusted-key", pub(e)]),
    ],
    fresh,
  );
  assert.equal(cons.code, 0, cons.stdout + cons.stderr);
  const groups = (
    JSON.parse(cons.stdout) as { paths: { groups: { local: boolean; identities: unknown[] }[] }[] }
  ).paths[0]?.groups;
  assert.deepEqual(
    groups?.map((g) => [g.local, g.identities.length]),
    [[true, 3]],
  );
  // A verifier that trusts none of the signers fails, saying so.
  const stranger = cliHome();
  const v = provenix(
    [
      "verify",
      "--plain-http",
      "--no-nix-keys",
      "--trusted-key",
      "x-1:" + "A".repeat(43) + "=",
      `oci://${ref}`,
    ],
    stranger,
  );
  assert.equal(v.code, 1);
  assert.match(v.stdout, /signature does not verify/);
  const none = await pv(["verify", "--plain-http", `oci://${reg.host}/nix/ref:${tag}`], a);
  assert.equal(none.code, 1);
  assert.match(none.stdout, /no Sigstore bundle is attached/);
});

test("basic auth (htpasswd) and bearer tokens: refused without credentials; credentials from stdin, the environment and Docker's config.json", async (t) => {
  const user = "builder";
  const password = "s3cret pass";
  const archive = image("archive", `${SALT}-auth`);
  for (const mode of ["basic", "token"] as const) {
    const reg = await Registry.start(
      t,
      mode === "basic" ? { basic: { user, password }, tls: true } : { token: { user, password } },
    );
    const env = home();
    const tls = reg.caFile && mode === "basic" ? ["--ca-file", reg.caFile] : ["--plain-http"];
    const anon = await pv(["push", "--quiet", ...tls, archive, `${reg.host}/nix/auth:v1`], env);
    assert.equal(anon.code, 7, anon.stderr);
    assert.ok(isOneLineError(anon), anon.stderr);
    assert.match(anon.stderr, /authentication required \(give credentials/);
    const wrong = await pushJson(
      env,
      [...tls, "--username", user, "--password-stdin", archive, `${reg.host}/nix/auth:v1`],
      "nope",
    );
    assert.equal(wrong.r.code, 7, wrong.r.stderr);
    assert.match(wrong.r.stderr, mode === "basic" ? /credentials were refused/ : /refused a token/);
    const stdin = await pushJson(
      env,
      [...tls, "--username", user, "--password-stdin", archive, `${reg.host}/nix/auth:v1`],
      password,
    );
    assert.equal(stdin.r.code, 0, stdin.r.stderr);
    const viaEnv = await pushJson(
      { ...env, PROVENIX_REGISTRY_USERNAME: user, PROVENIX_REGISTRY_PASSWORD: password },
      [...tls, "--no-attest", archive, `${reg.host}/nix/auth:v2`],
    );
    assert.equal(viaEnv.r.code, 0, viaEnv.r.stderr);
    const docker = tempDir();
    writeFileSync(
      join(docker, "config.json"),
      JSON.stringify({
        auths: { [reg.host]: { auth: Buffer.from(`${user}:${password}`).toString("base64") } },
      }),
    );
    const viaDocker = await pushJson({ ...env, DOCKER_CONFIG: docker }, [
      ...tls,
      "--no-attest",
      archive,
      `${reg.host}/nix/auth:v3`,
    ]);
    assert.equal(viaDocker.r.code, 0, viaDocker.r.stderr);
    const v = await pv(["verify", ...tls, `oci://${reg.host}/nix/auth:v1`], {
      ...env,
      DOCKER_CONFIG: docker,
    });
    assert.equal(v.code, 0, v.stdout + v.stderr);
    if (mode === "basic") {
      // TLS: an unknown CA is refused with a hint; skopeo trusts the same CA file.
      const noCa = provenix(
        ["push", "--quiet", "--no-attest", archive, `${reg.host}/nix/auth:v4`],
        { ...env, DOCKER_CONFIG: docker },
      );
      assert.equal(noCa.code, 7);
      assert.match(noCa.stderr, /give the registry's CA with --ca-file/);
      const certs = tempDir();
      writeFileSync(join(certs, "ca.crt"), readFileSync(reg.caFile ?? ""));
      skopeo(
        "inspect",
        "--cert-dir",
        certs,
        "--creds",
        `${user}:${password}`,
        `docker://${reg.host}/nix/auth:v1`,
      );
    }
  }
});

test("faults: retried when they pass, one clear line when they do not, and no tag for a half-pushed image", async (t) => {
  const reg = await Registry.start(t);
  const env = home();
  const archive = image("archive", `${SALT}-faults`);
  const push = (host: string, repo: string, ...extra: string[]) =>
    pv(
      [
        "push",
        "--quiet",
        "--plain-http",
        "--no-attest",
        ...extra,
        archive,
        `${host}/nix/${repo}:v1`,
      ],
      env,
    );
  const tagged = (repo: string) =>
    spawnSync("skopeo", [
      "inspect",
      "--raw",
      "--tls-verify=false",
      `docker://${reg.host}/nix/${repo}:v1`,
    ]).status === 0;

  // A 503 on the first two uploads: retried, pushed.
  const flaky = await FaultProxy.start(t, reg.host, (req, n) =>
    req.method === "PUT" && n < 8 && /blobs\/uploads/.test(req.url ?? "")
      ? { kind: "status", status: 503 }
      : undefined,
  );
  assert.equal((await push(flaky.host, "flaky")).code, 0);
  assert.ok(flaky.hits > 0 && tagged("flaky"));
  // The connection dropped in the middle of a layer upload, once: retried, pushed.
  let dropped = false;
  const drop = await FaultProxy.start(t, reg.host, (req) => {
    if (
      !dropped &&
      req.method === "PUT" &&
      /blobs\/uploads/.test(req.url ?? "") &&
      Number(req.headers["content-length"]) > 5000
    ) {
      dropped = true;
      return { kind: "drop-after", bytes: 4096 };
    }
    return undefined;
  });
  assert.equal((await push(drop.host, "dropped")).code, 0);
  assert.ok(dropped && tagged("dropped"));

  const cases: [string, Parameters<typeof FaultProxy.start>[2], RegExp, string[]][] = [
    [
      "server errors that persist",
      (req) =>
        req.method === "PUT" && /manifests/.test(req.url ?? "")
          ? { kind: "status", status: 500 }
          : undefined,
      /server error 500 after 4 attempts/,
      [],
    ],
    [
      "access denied",
      (req) => (req.method === "POST" ? { kind: "status", status: 403 } : undefined),
      /access denied/,
      [],
    ],
    [
      "a registry that hangs",
      (req) => (req.method === "HEAD" ? { kind: "hang" } : undefined),
      /timed out after 1000 ms/,
      ["--timeout", "1"],
    ],
    [
      "a digest the registry disagrees with",
      (req) =>
        req.method === "PUT" && /manifests/.test(req.url ?? "")
          ? { kind: "header", name: "docker-content-digest", value: "sha256:" + "0".repeat(64) }
          : undefined,
      /stored manifest v1 as sha256:0{64}, we sent sha256:/,
      [],
    ],
  ];
  for (const [i, [name, rule, message, extra]] of cases.entries()) {
    const proxy = await FaultProxy.start(t, reg.host, rule);
    const repo = `fault${i}`;
    const r = await push(proxy.host, repo, ...extra);
    assert.equal(r.code, 7, `${name}: ${r.stderr}`);
    assert.ok(isOneLineError(r), `${name}: ${r.stderr}`);
    assert.match(r.stderr, message, name);
    if (name !== "a digest the registry disagrees with")
      assert.ok(!tagged(repo), `${name}: no tag for a half-pushed image`);
  }
  // A manifest over the size limit, when reading.
  const huge = await FaultProxy.start(t, reg.host, (req) =>
    req.method === "GET" && /manifests/.test(req.url ?? "")
      ? {
          kind: "body",
          body: Buffer.alloc(5 << 20, 32),
          contentType: "application/vnd.oci.image.manifest.v1+json",
        }
      : undefined,
  );
  const v = await pv(["verify", "--plain-http", `oci://${huge.host}/nix/flaky:v1`], env);
  assert.equal(v.code, 7, v.stderr);
  assert.match(v.stderr, /response exceeds 4194304 bytes/);

  // Bad input: not an image, a truncated archive, a bad reference, nothing listening.
  const bad: [string[], number, RegExp][] = [
    [
      ["push", "--plain-http", image("notAnImage"), `${reg.host}/nix/x:v1`],
      3,
      /without manifest\.json: not a docker-archive image/,
    ],
    [
      ["push", "--plain-http", image("truncated"), `${reg.host}/nix/x:v1`],
      3,
      /truncated tar archive/,
    ],
    [["push", "--plain-http", archive, "no-registry"], 2, /names no registry/],
    [
      ["push", "--plain-http", archive, `${reg.host}/Upper/Case:v1`],
      2,
      /not a valid image reference/,
    ],
    [
      ["push", "--plain-http", "--timeout", "2", archive, "127.0.0.1:1/nix/x:v1"],
      7,
      /cannot talk to 127\.0\.0\.1:1: ECONNREFUSED/,
    ],
    [
      ["verify", "--plain-http", `oci://${reg.host}/nix/missing:v1`],
      7,
      /nix\/missing:v1 is not in the registry/,
    ],
  ];
  for (const [args, code, message] of bad) {
    const r = provenix(args, env);
    assert.equal(r.code, code, `${args.join(" ")}: ${r.stderr}`);
    assert.ok(isOneLineError(r), r.stderr);
    assert.match(r.stderr, message);
  }
});

test("chains mode for images: the daemon pushes an attested image, retrying until the registry is up, and attaches its provenance", async (t) => {
  const env = home();
  const port = await freePort();
  const roots = tempDir();
  const d = Daemon.start(
    t,
    ["--gc-roots", roots, "--poll", "100", "--push-to", `127.0.0.1:${port}/nix`, "--plain-http"],
    env,
  );
  await d.waitFor((e) => e.event === "started", "start");
  // Built while the registry is down: attested, queued, retried.
  const { stdout } = await promisify(execFile)("nix-build", [
    IMAGES,
    "-A",
    "archive",
    "--argstr",
    "salt",
    `${SALT}-daemon`,
    "--no-out-link",
  ]);
  const out = stdout.trim();
  await d.waitFor((e) => e.event === "push-retry" && e.path === out, "a failed first push");
  assert.ok(readdirSync(roots).length > 0, "the image keeps its GC root until it is pushed");
  const reg = await Registry.start(t, { port });
  const pushed = await d.waitFor((e) => e.event === "pushed" && e.path === out, "the push", 60_000);
  const hash = basename(out).slice(0, 32);
  const ref = `${reg.host}/nix/image:${hash}`;
  const raw = skopeo("inspect", "--raw", "--tls-verify=false", `docker://${ref}`);
  assert.equal(String(pushed.image), `${reg.host}/nix/image@${ociDigest(Buffer.from(raw))}`);
  const v = await pv(["verify", "--plain-http", `oci://${ref}`], env);
  assert.equal(v.code, 0, v.stdout + v.stderr);
  const status = JSON.parse((await pv(["status", "--json"], env)).stdout) as {
    pushes: { counts: Record<string, number> };
  };
  assert.deepEqual(status.pushes.counts, { pending: 0, pushed: 1, failed: 0, skipped: 0 });
  for (let i = 0; i < 100 && readdirSync(roots).length > 0; i++) await sleep(100);
  assert.deepEqual(readdirSync(roots), [], "the GC root is released once the image is pushed");
});
