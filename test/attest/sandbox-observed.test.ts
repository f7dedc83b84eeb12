// `sandbox = true` with `sandbox-fallback = true` does not say the sandbox applied:
// provenix's provenance then carries what a probe build saw, and without the
// fallback (or with the sandbox off) it carries nothing it did not observe.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { cliHome, provenix } from "../helpers/cli.js";
import { build, sandboxPaths, tempDir, useTestNix } from "../helpers/nix.js";

useTestNix();

interface Shown {
  attestations: {
    statement: {
      predicate: {
        buildDefinition: {
          internalParameters: {
            settings: Record<string, unknown>;
            sandboxObserved?: { source: string; result: string };
          };
        };
      };
    };
  }[];
}

function attestWith(nixConf: string[], salt: string) {
  const conf = tempDir("provenix-nixconf-probe-");
  writeFileSync(join(conf, "nix.conf"), ["substituters =", ...nixConf, ""].join("\n"));
  const env = { ...cliHome(), NIX_CONF_DIR: conf };
  assert.equal(provenix(["keygen"], env).code, 0);
  const [out] = build("libA", salt);
  const a = provenix(["attest", out as string], env);
  assert.equal(a.code, 0, a.stderr);
  const shown = JSON.parse(
    provenix(["show", "--json", "--statement", out as string], env).stdout,
  ) as Shown;
  return shown.attestations[0]?.statement.predicate.buildDefinition.internalParameters;
}

test("with the sandbox's fallback on, provenance records what a probe build saw; with it off, or the sandbox off, nothing is claimed", () => {
  const salt = `probe-${Date.now()}`;
  const sandbox = ["sandbox = true", `extra-sandbox-paths = ${sandboxPaths()}`];
  const fallback = attestWith([...sandbox, "sandbox-fallback = true"], salt);
  assert.equal(fallback?.settings["sandbox-fallback"], true);
  assert.deepEqual(fallback?.sandboxObserved, { source: "probe build", result: "sandboxed" });

  // A sandbox that cannot start /bin/sh: the probe says it failed, rather than nothing.
  const broken = attestWith(["sandbox = true", "sandbox-fallback = true", "sandbox-paths ="], salt);
  assert.deepEqual(broken?.sandboxObserved, { source: "probe build", result: "failed" });

  for (const conf of [[...sandbox, "sandbox-fallback = false"], ["sandbox = false"]]) {
    const p = attestWith(conf, salt);
    assert.equal(p?.sandboxObserved, undefined, conf.join("; "));
  }
});
