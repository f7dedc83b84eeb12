// provenix rebuild / consensus / import / report, on real Nix rebuilds.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import test from "node:test";
import { Ajv } from "ajv";
import addFormats from "ajv-formats";
import {
  serializeStatement,
  IN_TOTO_PAYLOAD_TYPE,
  type Statement,
} from "../../src/attest/index.js";
import { REPRODUCIBILITY_V1, type ReproducibilityPredicate } from "../../src/repro/index.js";
import { parsePublicKey, parseSecretKey, signBundle } from "../../src/sign/index.js";
import { AttestationStore } from "../../src/store/index.js";
import { cliHome, clean, isOneLineError, provenix, type CliResult } from "../helpers/cli.js";
import {
  drvOutputs,
  FIXTURES,
  instantiate,
  ROOT,
  run,
  tempDir,
  useTestNix,
} from "../helpers/nix.js";
import { sigstoreVerify } from "../helpers/sigstore.js";

useTestNix();
const REPRO = join(FIXTURES, "repro.nix");
const SALT = `repro-${process.pid}-${Date.now()}`;
const drv = (attr: string, salt = SALT) => instantiate(attr, salt, REPRO);

function home(): NodeJS.ProcessEnv {
  const env = cliHome();
  assert.equal(provenix(["keygen"], env).code, 0);
  return env;
}

const storeOf = (env: NodeJS.ProcessEnv) =>
  AttestationStore.open(join(env.XDG_DATA_HOME ?? "", "provenix", "attestations.db"));
const publicKeyOf = (env: NodeJS.ProcessEnv) =>
  readFileSync(join(env.XDG_CONFIG_HOME ?? "", "provenix", "signing.pub"), "utf8").trim();

/** An independent NAR hash: Nix's own serialisation, hashed by sha256sum. */
function nixNarSha256(path: string): string {
  const dump = spawnSync("nix-store", ["--dump", path], { maxBuffer: 1 << 30 });
  assert.equal(dump.status, 0, String(dump.stderr));
  return createHash("sha256").update(dump.stdout).digest("hex");
}

interface RebuildJson {
  derivation: string;
  verdict: string;
  builtFirst: boolean;
  outputs: ReproducibilityPredicate["outputs"];
  diff?: { outputs: { output: string; files: { path: string; change: string }[] }[] };
  reports: { name: string; sha256: string; mediaType: string }[];
  attestation: { id: number };
}

function rebuildJson(
  env: NodeJS.ProcessEnv,
  ...args: string[]
): { r: CliResult; res: RebuildJson } {
  const r = provenix(["rebuild", "--json", ...args], env);
  const [res] = JSON.parse(r.stdout || "[]") as RebuildJson[];
  assert.ok(res, r.stderr);
  return { r, res };
}

const ajv = new Ajv({ strict: true, allErrors: true });
(addFormats as unknown as (a: Ajv) => void)(ajv);
const predicateSchema = ajv.compile(
  JSON.parse(
    readFileSync(join(ROOT, "docs", "schemas", "reproducibility-v1.schema.json"), "utf8"),
  ) as object,
);

function storedStatement(env: NodeJS.ProcessEnv, id: number) {
  const store = storeOf(env);
  const a = store.find({ predicateType: REPRODUCIBILITY_V1 }).find((x) => x.id === id);
  store.close();
  assert.ok(a, `attestation #${id}`);
  const bundle = JSON.parse(a.bundle.toString()) as { dsseEnvelope: { payload: string } };
  const statement = JSON.parse(
    Buffer.from(bundle.dsseEnvelope.payload, "base64").toString(),
  ) as Statement<ReproducibilityPredicate>;
  return { bundle: a.bundle, statement };
}

test("a deterministic derivation: reproducible, NAR hashes equal Nix's own, signed, schema-valid, sigstore-js verifies", () => {
  const env = home();
  const d = drv("det");
  const out = drvOutputs(d).out ?? "";
  const first = rebuildJson(env, d);
  assert.equal(first.r.code, 0, first.r.stderr);
  assert.equal(first.res.verdict, "reproducible");
  assert.equal(first.res.builtFirst, true, "its outputs were not in the store yet");
  const [o] = first.res.outputs;
  assert.equal(o?.path, out);
  assert.equal(o?.result, "reproducible");
  assert.deepEqual(
    o?.builds.map((b) => [b.narHash, b.origin]),
    [
      [nixNarSha256(out), "local"],
      [nixNarSha256(out), "rebuild"],
    ],
  );
  assert.ok(!existsSync(out + ".check"), "no .check when the rebuild is identical");

  const { bundle, statement } = storedStatement(env, first.res.attestation.id);
  assert.deepEqual(statement.subject, [{ name: out, digest: { sha256: nixNarSha256(out) } }]);
  assert.equal(statement.predicateType, REPRODUCIBILITY_V1);
  assert.ok(predicateSchema(statement.predicate), JSON.stringify(predicateSchema.errors));
  const p = statement.predicate!;
  assert.equal(p.derivation.path, d);
  assert.equal(
    p.derivation.digest.sha256,
    createHash("sha256").update(readFileSync(d)).digest("hex"),
  );
  assert.equal(p.rebuilder.nixVersion, run("nix-store", ["--version"]).trim().split(" ").at(-1));
  sigstoreVerify(bundle, parsePublicKey(publicKeyOf(env)));

  // Outputs in the store now: the second rebuild does not build first, and gets its own attestation.
  const second = rebuildJson(env, out);
  assert.equal(second.r.code, 0, second.r.stderr);
  assert.equal(second.res.builtFirst, false);
  assert.notEqual(second.res.attestation.id, first.res.attestation.id);
  const text = provenix(["rebuild", "--quiet", out], env);
  assert.equal(text.code, 0);
  assert.match(text.stdout, /: reproducible\n/);
  assert.match(text.stdout, /rebuild identical/);
});

for (const [attr, file, why] of [
  ["stamp", "built-at", "a timestamp"],
  ["random", "seed", "randomness"],
  ["builddir", "info", "the path of a per-build temporary directory"],
] as const) {
  test(`${why} makes a build unreproducible: the rebuild is kept and hashed, the differing file listed, diffoscope's report linked by digest`, () => {
    const env = home();
    const d = drv(attr);
    const out = drvOutputs(d).out ?? "";
    const { r, res } = rebuildJson(env, d);
    assert.equal(r.code, 1, `exit 1 when an output differs: ${r.stderr}`);
    assert.equal(res.verdict, "unreproducible");
    const [o] = res.outputs;
    assert.equal(o?.result, "differs");
    assert.ok(existsSync(out + ".check"), "Nix keeps the differing rebuild at <out>.check");
    assert.equal(o?.builds[0]?.narHash, nixNarSha256(out));
    assert.equal(o?.builds[1]?.narHash, nixNarSha256(out + ".check"));
    assert.notEqual(o?.builds[0]?.narHash, o?.builds[1]?.narHash);

    // The per-file report names exactly the file that varies.
    assert.deepEqual(
      res.diff?.outputs[0]?.files.map((f) => [f.path, f.change]),
      [[file, "modified"]],
    );
    const { statement } = storedStatement(env, res.attestation.id);
    assert.ok(predicateSchema(statement.predicate), JSON.stringify(predicateSchema.errors));
    const linked = statement.predicate?.reports ?? [];
    assert.deepEqual(
      linked.map((x) => x.name),
      ["diff", "diffoscope:out"],
      "diffoscope is installed by scripts/setup.sh, so its report must be there",
    );
    for (const rep of linked) {
      const shown = spawnSync(
        process.execPath,
        [join(ROOT, "bin", "provenix.js"), "report", rep.digest?.sha256 ?? ""],
        {
          env: clean(env),
        },
      );
      assert.equal(shown.status, 0, String(shown.stderr));
      assert.equal(createHash("sha256").update(shown.stdout).digest("hex"), rep.digest?.sha256);
      if (rep.name === "diffoscope:out") {
        assert.match(shown.stdout.toString(), new RegExp(`${out}\\.check/${file}`));
      } else {
        assert.equal((JSON.parse(shown.stdout.toString()) as { derivation: string }).derivation, d);
      }
    }
    // A second run replaces the stale .check with its own result.
    const again = rebuildJson(env, d);
    assert.equal(again.res.outputs[0]?.builds[1]?.narHash, nixNarSha256(out + ".check"));
    assert.notEqual(again.res.outputs[0]?.builds[1]?.narHash, o?.builds[1]?.narHash);
  });
}

test("two outputs, one varying: the differing output is kept, the rest reported as Nix compared them", () => {
  const env = home();
  const d = drv("multi");
  const outs = drvOutputs(d);
  const { r, res } = rebuildJson(env, d, "--no-diffoscope");
  assert.equal(r.code, 1, r.stderr);
  const byName = Object.fromEntries(res.outputs.map((o) => [o.name, o]));
  assert.equal(byName.dev?.result, "differs");
  assert.equal(byName.dev?.builds[1]?.narHash, nixNarSha256((outs.dev ?? "") + ".check"));
  // Nix stops at the first difference: `out` is either compared (identical) or not at all.
  const outResult = byName.out?.result;
  assert.ok(outResult === "reproducible" || outResult === "not-compared", String(outResult));
  assert.equal(byName.out?.builds.length, outResult === "reproducible" ? 2 : 1);
  assert.deepEqual(
    res.reports.map((x) => x.name),
    ["diff"],
    "--no-diffoscope leaves its report out",
  );
});

test("a rebuild that fails: one-line error, exit 6, nothing stored", () => {
  // The flaky fixture fails when it finds the mark its first build left in the host's
  // /tmp, which a sandboxed build cannot see: this one test builds without the sandbox.
  const conf = tempDir("provenix-nixconf-unsandboxed-");
  writeFileSync(join(conf, "nix.conf"), "substituters =\nsandbox = false\n");
  const env = { ...home(), NIX_CONF_DIR: conf };
  const d = drv("flaky");
  run("nix-store", ["--realise", d], env);
  const r = provenix(["rebuild", "--quiet", d], env);
  assert.equal(r.code, 6, r.stderr);
  assert.ok(isOneLineError(r), r.stderr);
  assert.match(r.stderr, /rebuild of .*flaky-1\.0\.drv failed: .*/);
  const store = storeOf(env);
  assert.equal(store.find({ predicateType: REPRODUCIBILITY_V1 }).length, 0);
  store.close();
});

function countRebuilds(env: NodeJS.ProcessEnv): Map<string, number> {
  const store = storeOf(env);
  const n = new Map<string, number>();
  for (const a of store.find({ predicateType: REPRODUCIBILITY_V1 })) {
    n.set(a.derivation ?? "", (n.get(a.derivation ?? "") ?? 0) + 1);
  }
  store.close();
  return n;
}

test("closure: every derivation rebuilt once, dependencies first; counts, percentage, HTML; kill -9 mid-run resumes where it stopped", async () => {
  const env = home();
  const salt = `${SALT}-closure`;
  const root = drv("app", salt);
  const libc = drv("libc", salt);
  const src = drv("src", salt);

  // Start, and kill -9 once three derivations are done.
  const child = spawn(
    process.execPath,
    [join(ROOT, "bin", "provenix.js"), "rebuild", "--closure", root],
    {
      env: clean(env),
    },
  );
  let progress = "";
  await new Promise<void>((resolve, reject) => {
    child.stderr.on("data", (b: Buffer) => {
      progress += b.toString();
      if ((progress.match(/^\[\d+\/\d+\]/gm) ?? []).length >= 3) {
        child.kill("SIGKILL");
        resolve();
      }
    });
    child.on("close", () =>
      reject(new Error(`finished before it could be interrupted:\n${progress}`)),
    );
  });
  await new Promise((r) => child.on("close", r));
  const before = countRebuilds(env);
  assert.ok(before.size >= 2, `some rebuilds landed before the kill: ${progress}`);

  const html = join(tempDir(), "report.html");
  const r = provenix(["rebuild", "--closure", "build", "--html", html, "--json", root], env);
  assert.equal(r.code, 1, `one derivation is unreproducible: ${r.stderr}`);
  assert.match(r.stderr, /resumed the unfinished run/);
  const redone = (r.stderr.match(/^\[\d+\/\d+\] (reproducible|unreproducible)/gm) ?? []).length;
  assert.ok(redone <= 10 - before.size + 1, `resumed, not restarted: ${r.stderr}`);
  const [report] = JSON.parse(r.stdout) as {
    summary: {
      total: number;
      reproducible: number;
      unreproducible: number;
      skipped: number;
      failed: number;
      percentReproducible: number;
      unreproducibleList: string[];
      complete: boolean;
    };
    items: { drvPath: string; status: string }[];
  }[];
  const s = report!.summary;
  // src (fixed-output, skipped), liba, libb, libc (unreproducible), slow-1..6, app.
  assert.deepEqual(
    [s.total, s.reproducible, s.unreproducible, s.skipped, s.failed, s.complete],
    [11, 9, 1, 1, 0, true],
  );
  assert.equal(s.percentReproducible, 90);
  assert.deepEqual(s.unreproducibleList, [libc]);
  assert.equal(report!.items.find((i) => i.drvPath === src)?.status, "skipped");
  // Dependencies first: each derivation comes after every input derivation.
  const order = report!.items.map((i) => i.drvPath);
  for (const [i, d] of order.entries()) {
    const inputs = run("nix-store", ["-q", "--references", d])
      .split("\n")
      .filter((p) => p.endsWith(".drv"));
    for (const input of inputs) assert.ok(order.indexOf(input) < i, `${input} before ${d}`);
  }
  // Exactly one attestation per rebuilt derivation, across the kill.
  const after = countRebuilds(env);
  assert.equal(after.size, 10);
  for (const [d, n] of after) assert.equal(n, 1, `${d} attested ${n} times`);

  const page = readFileSync(html, "utf8");
  assert.match(page, /^<!DOCTYPE html>/);
  assert.ok(
    !/<script|<link|src=|url\(/i.test(page),
    "self-contained: no scripts or external resources",
  );
  assert.ok(page.includes(libc) && page.includes("90%"));

  // Finished runs are not resumed: a new run starts (and --restart forces one).
  const fresh = provenix(["rebuild", "--closure", "runtime", "--quiet", root], env);
  assert.equal(fresh.code, 0, fresh.stderr);
  assert.match(fresh.stdout, /rebuilt runtime closure/);
});

test("consensus across builder keys; a builder that lies is outvoted; verify --require-reproduced-by counts distinct trusted keys", () => {
  const a = home();
  const b = home();
  const c = home();
  const d = drv("det", `${SALT}-consensus`);
  run("nix-store", ["--realise", d]);
  const out = drvOutputs(d).out ?? "";
  const truth = nixNarSha256(out);

  // A built it and signs provenance; B rebuilds it and exports its attestation.
  assert.equal(provenix(["attest", out], a).code, 0);
  assert.equal(provenix(["rebuild", "--quiet", out], b).code, 0);
  const dir = tempDir();
  const bFile = join(dir, "b.sigstore.json");
  assert.equal(
    provenix(["export", out, "--predicate-type", REPRODUCIBILITY_V1, "-o", bFile], b).code,
    0,
  );
  // C lies: it signs a rebuild of the same path with another hash.
  const liar = parseSecretKey(
    readFileSync(join(c.XDG_CONFIG_HOME ?? "", "provenix", "signing.key"), "utf8"),
  );
  const { statement } = storedStatement(b, 1);
  const forged = structuredClone(statement);
  const fake = "0".repeat(64);
  forged.predicate = {
    ...forged.predicate!,
    rebuilder: { ...forged.predicate!.rebuilder, id: "https://liar.example/builder" },
    outputs: forged.predicate!.outputs.map((o) => ({
      ...o,
      builds: o.builds.map((x) => ({ ...x, narHash: fake })),
    })),
  };
  const cFile = join(dir, "c.sigstore.json");
  writeFileSync(cFile, signBundle(serializeStatement(forged), IN_TOTO_PAYLOAD_TYPE, liar));

  const trust = ["--trusted-key", publicKeyOf(b), "--trusted-key", publicKeyOf(c)];
  const cons = provenix(["consensus", "--json", out, "--bundle", dir, ...trust], a);
  assert.equal(cons.code, 1, "builders disagree");
  const [pc] = (
    JSON.parse(cons.stdout) as {
      paths: {
        groups: { sha256: string; local: boolean; identities: { signer: string }[] }[];
        status: string;
      }[];
    }
  ).paths;
  assert.equal(pc?.status, "disagree");
  assert.deepEqual(
    pc?.groups.map((g) => [g.sha256, g.local, g.identities.length]),
    [
      [truth, true, 2],
      [fake, false, 1],
    ],
  );
  // Not trusting C: its claim is ignored, with the reason, and the rest agree.
  const without = provenix(["consensus", out, "--bundle", dir, "--trusted-key", publicKeyOf(b)], a);
  assert.equal(without.code, 0, without.stdout);
  assert.match(without.stdout, /: agree\n/);
  assert.match(without.stdout, /ignored .*c\.sigstore\.json: signature does not verify/);

  // Import the others' attestations (signatures checked first), then require agreement.
  const tampered = join(tempDir(), "tampered.sigstore.json");
  const t = JSON.parse(readFileSync(bFile, "utf8")) as { dsseEnvelope: { payload: string } };
  t.dsseEnvelope.payload = Buffer.from(
    Buffer.from(t.dsseEnvelope.payload, "base64").toString().replace(truth, fake),
  ).toString("base64");
  writeFileSync(tampered, JSON.stringify(t));
  const refused = provenix(["import", tampered, ...trust], a);
  assert.equal(refused.code, 1);
  assert.match(refused.stdout, /refused .*signature does not verify/);
  const imported = provenix(["import", bFile, cFile, ...trust], a);
  assert.equal(imported.code, 0, imported.stdout);
  assert.equal((imported.stdout.match(/^imported /gm) ?? []).length, 2);

  const two = provenix(["verify", "--json", "--require-reproduced-by", "2", out, ...trust], a);
  assert.equal(two.code, 0, two.stdout);
  const [v] = JSON.parse(two.stdout) as { reproducedBy: string[] }[];
  assert.equal(v?.reproducedBy.length, 2);
  const three = provenix(["verify", "--require-reproduced-by", "3", out, ...trust], a);
  assert.equal(three.code, 1);
  assert.match(
    three.stdout,
    /reason: reproduced by 2 trusted builder\(s\) .*, 3 required; disagreeing: .* signed sha256:0{64}/,
  );
  // B alone is not enough when B is not trusted.
  const untrusted = provenix(["verify", "--require-reproduced-by", "2", out], a);
  assert.equal(untrusted.code, 1);
  assert.match(untrusted.stdout, /reproduced by 1 trusted builder/);
});

test("rebuild, consensus, import and report refuse bad input with one line and a documented code", () => {
  const env = home();
  const cases: [string[], number, RegExp][] = [
    [["rebuild", "/etc/passwd"], 3, /outside the Nix store/],
    [["rebuild", "/nix/store/00000000000000000000000000000000-missing"], 3, /does not exist/],
    [["rebuild", "--html", "x.html", "/nix/store"], 2, /use it with --closure/],
    [["rebuild", "--diffoscope-timeout", "-1", "/nix/store"], 2, /diffoscope-timeout/],
    [["report", "nothex"], 2, /is not a sha256/],
    [["report", "a".repeat(64)], 3, /no report sha256:a{64}/],
    [["import", "/nonexistent.json"], 3, /cannot read bundle/],
    [["verify", "--require-reproduced-by", "0", "/nix/store"], 2, /--require-reproduced-by/],
  ];
  for (const [args, code, message] of cases) {
    const r = provenix(args, env);
    assert.equal(r.code, code, `${args.join(" ")}: ${r.stderr}`);
    assert.ok(isOneLineError(r), `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message);
  }
});
