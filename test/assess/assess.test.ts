// `provenix assess` on real Nix configurations: each setting flipped in a
// temporary NIX_CONF_DIR, read back by Nix itself (nix show-config).
import assert from "node:assert/strict";
import { chmodSync, chownSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { cliHome, isOneLineError, provenix } from "../helpers/cli.js";
import { Daemon } from "../helpers/daemon.js";
import { build, run, sandboxPaths, tempDir, useTestNix, writeNixFile } from "../helpers/nix.js";

useTestNix();

interface Report {
  level: number;
  pass?: boolean;
  findings: { id: string; verdict: string; evidence: string[]; fix?: string }[];
}

const HARDENED = [
  "substituters =",
  "sandbox = true",
  "sandbox-fallback = false",
  `extra-sandbox-paths = ${sandboxPaths()}`,
  "build-users-group = nixbld",
  "require-sigs = true",
  "builders =",
];

/** A provenix home with a key, a declared-hosted config and a Nix config of `lines`. */
function machine(lines: string[], config: Record<string, unknown> = { hosted: true }) {
  const env = cliHome();
  assert.equal(provenix(["keygen"], env).code, 0);
  mkdirSync(join(env.XDG_CONFIG_HOME!, "provenix"), { recursive: true });
  writeFileSync(join(env.XDG_CONFIG_HOME!, "provenix", "config.json"), JSON.stringify(config));
  const nixConf = tempDir("provenix-assess-nixconf-");
  writeFileSync(join(nixConf, "nix.conf"), lines.join("\n") + "\n");
  const all: NodeJS.ProcessEnv = { ...env, NIX_CONF_DIR: nixConf };
  return { env: all, nixConf };
}

function assessJson(env: NodeJS.ProcessEnv, ...args: string[]): Report & { code: number } {
  const r = provenix(["assess", "--json", ...args], env);
  assert.ok(r.code === 0 || r.code === 1, r.stderr);
  return { ...(JSON.parse(r.stdout) as Report), code: r.code };
}

function gap(r: Report, id: string): string {
  const f = r.findings.find((x) => x.id === id);
  assert.ok(f, `finding ${id}`);
  assert.equal(f.verdict, "not-met", `${id} should not be met: ${JSON.stringify(f)}`);
  return [...f.evidence.filter((e) => e.startsWith("gap:")), `fix: ${f.fix ?? ""}`].join("\n");
}

function met(r: Report, id: string): void {
  const f = r.findings.find((x) => x.id === id);
  assert.equal(f?.verdict, "met", `${id}: ${JSON.stringify(f)}`);
}

test("a hardened builder running the daemon can claim Build L3; each flipped setting lowers it, with the fix", async (t) => {
  const { env, nixConf } = machine(HARDENED);
  const d = Daemon.start(t, ["--no-gc-roots"], env);
  await d.waitFor((e) => e.event === "started", "start");
  const best = assessJson(env, "--level", "3");
  assert.equal(best.level, 3, JSON.stringify(best.findings, null, 1));
  assert.equal(best.code, 0);
  for (const id of [
    "provenance-exists",
    "provenance-authentic",
    "hosted",
    "provenance-unforgeable",
    "isolated",
  ])
    met(best, id);
  assert.ok(
    best.findings
      .find((x) => x.id === "isolated")
      ?.evidence.some((e) => /probe build: sandboxed \(the builder was PID 1/.test(e)),
    "a probe build showed the sandbox applies",
  );

  // The level goes into builder.id only where the assessment holds it up. The build
  // runs under the hardened nix.conf: sandboxed, no fallback, and it can tell (the
  // host's /root is not in the sandbox).
  const probe = writeNixFile(
    tempDir(),
    "probe.nix",
    `derivation { name = "isolation-probe"; system = builtins.currentSystem; builder = "/bin/sh";
      salt = "${Date.now()}"; PATH = "/usr/bin:/bin";
      args = [ "-c" "if test -e /root; then echo host > $out; else echo sandboxed > $out; fi" ]; }`,
  );
  const lib = run("nix-build", [probe, "--no-out-link"], env).trim();
  assert.equal(readFileSync(lib, "utf8"), "sandboxed\n", "the build ran in the sandbox");
  const claimed = provenix(["attest", lib, "--claim-level", "3", "--json"], env);
  assert.equal(claimed.code, 0, claimed.stderr);
  const builderId = (JSON.parse(claimed.stdout) as { builderId: string }[])[0]?.builderId ?? "";
  assert.match(builderId, /[?&]slsa-build-level=3(#|$)/);
  const v3 = provenix(["verify", lib, "--require-level", "3", "--json"], env);
  assert.equal(v3.code, 0, v3.stdout);

  const flips: [string, string[], string, number, RegExp][] = [
    [
      "sandbox disabled",
      ["sandbox = false"],
      "isolated",
      2,
      /gap: sandbox = false[\s\S]*fix: set sandbox = true/,
    ],
    [
      "sandbox may fall back",
      ["sandbox-fallback = true"],
      "isolated",
      2,
      /sandbox-fallback = true[\s\S]*fix: .*sandbox-fallback = false/,
    ],
    [
      // The probe build cannot even start /bin/sh in a sandbox without it.
      "sandboxed builds do not work",
      ["sandbox-paths ="],
      "isolated",
      2,
      /gap: probe build: failed[\s\S]*fix: make sandboxed builds work here/,
    ],
    [
      "builds as the key owner",
      ["build-users-group ="],
      "provenance-authentic",
      1,
      /build-users-group is empty: builds run as the user who started them/,
    ],
    [
      "unsigned substitutes",
      ["require-sigs = false", "substituters = http://127.0.0.1:1"],
      "isolated",
      2,
      /require-sigs = false[\s\S]*fix: set require-sigs = true/,
    ],
    [
      "impure derivations",
      ["experimental-features = nix-command impure-derivations"],
      "isolated",
      2,
      /impure-derivations/,
    ],
  ];
  for (const [what, lines, id, level, message] of flips) {
    writeFileSync(join(nixConf, "nix.conf"), [...HARDENED, ...lines].join("\n") + "\n");
    const r = assessJson(env, "--level", "3");
    assert.equal(r.level, level, `${what}: level`);
    assert.equal(r.code, 1, `${what}: --level 3 fails`);
    assert.match(gap(r, id), message, what);
  }

  // Remote builders from a machines file.
  writeFileSync(join(nixConf, "machines"), "ssh://builder.example.org x86_64-linux\n");
  writeFileSync(
    join(nixConf, "nix.conf"),
    [
      ...HARDENED.filter((l) => !l.startsWith("builders")),
      `builders = @${join(nixConf, "machines")}`,
    ].join("\n") + "\n",
  );
  assert.match(
    gap(assessJson(env), "isolated"),
    /remote builders configured \(ssh:\/\/builder.example.org\)/,
  );

  // The key readable by the build users' group.
  writeFileSync(join(nixConf, "nix.conf"), HARDENED.join("\n") + "\n");
  const key = join(env.XDG_CONFIG_HOME!, "provenix", "signing.key");
  chmodSync(key, 0o640);
  // chgrp to the build group: now the build users could read the key.
  chownSync(key, 0, gid("nixbld"));
  const leaked = assessJson(env);
  assert.match(gap(leaked, "provenance-unforgeable"), /group-readable to, the build users/);
  assert.match(gap(leaked, "provenance-authentic"), /key file mode 640/);
  assert.ok(leaked.level <= 1);
  chmodSync(key, 0o600);

  await d.stop();
  // No daemon: provenance only on request.
  const stopped = assessJson(env);
  assert.match(gap(stopped, "provenance-authentic"), /no provenix daemon running/);
  assert.match(gap(stopped, "provenance-unforgeable"), /fix: run 'provenix daemon' in db mode/);
});

function gid(group: string): number {
  const line = readFileSync("/etc/group", "utf8")
    .split("\n")
    .find((l) => l.startsWith(`${group}:`));
  return Number(line?.split(":")[2]);
}

test("a workstation: not hosted, no key, nothing attested: L0, and what to do about it", () => {
  const { env } = machine(["substituters =", "sandbox = false"], {});
  const none = provenix(["assess", "--json", "--key", join(tempDir(), "missing.key")], env);
  const r = JSON.parse(none.stdout) as Report;
  assert.equal(r.level, 0);
  assert.match(gap(r, "provenance-exists"), /no signing key at [\s\S]*fix: run 'provenix keygen'/);
  assert.match(gap(r, "hosted"), /not declared hosted: a workstation cannot claim L2/);
  assert.match(gap(r, "producer-distribute"), /no distribution declared/);
  // Attesting on request is enough for L1 (provenance exists, unsigned would do).
  const [out] = build("libA", `assess-${Date.now()}`);
  assert.equal(provenix(["attest", out!], env).code, 0);
  const l1 = assessJson(env);
  assert.equal(l1.level, 1);
  met(l1, "provenance-exists");
  const text = provenix(["assess"], env);
  assert.match(text.stdout, /This machine can claim SLSA Build L1\n$/);
  assert.match(text.stdout, /NOT MET {2}L2 {2}Isolation: hosted/);
  // A claim the machine cannot back is refused, and nothing is attested.
  const before = provenix(["show", out!, "--json"], env).stdout;
  const refused = provenix(["attest", out!, "--claim-level", "2"], env);
  assert.equal(refused.code, 2);
  assert.ok(isOneLineError(refused), refused.stderr);
  assert.match(
    refused.stderr,
    /cannot claim SLSA Build L2: this machine assesses at L1 \(not met: .*Isolation: hosted/,
  );
  assert.equal(provenix(["show", out!, "--json"], env).stdout, before);
  // Verifiers can require a level: an unclaimed builder.id does not pass.
  const v = provenix(["verify", out!, "--require-level", "1"], env);
  assert.equal(v.code, 1);
  assert.match(v.stdout, /claims no SLSA Build level; L1 required/);
  const bad = provenix(["assess", "--level", "4"], env);
  assert.equal(bad.code, 2);
  assert.ok(isOneLineError(bad));
});
