// A .drv is bytes: Nix strings may be latin1 or cp1252 as well as UTF-8, and every
// byte sequence Nix writes must come back exactly, be checked against its path, and
// be attested with its bytes intact.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import {
  checkDerivationPaths,
  envValue,
  parseDerivationBytes,
  unparseDerivationBytes,
} from "../../src/nix/index.js";
import { readDerivationFile } from "../../src/system/nix-cli.js";
import { cliHome, provenix } from "../helpers/cli.js";
import { run, tempDir, useTestNix } from "../helpers/nix.js";

useTestNix();

/** A .nix file whose string literals hold these exact bytes; Nix keeps them as bytes. */
function nixFileWithBytes(dir: string, name: string, value: Buffer, salt: string): string {
  const file = join(dir, `${name}.nix`);
  writeFileSync(
    file,
    Buffer.concat([
      Buffer.from(
        `derivation { name = "${name}"; system = builtins.currentSystem; builder = "/bin/sh"; salt = "${salt}"; greeting = "`,
      ),
      value,
      Buffer.from(`"; args = [ "-c" "echo ok > $out" ]; }\n`),
    ]),
  );
  return file;
}

const CASES: [string, Buffer, "utf8" | "latin1"][] = [
  ["utf8", Buffer.from("café ☕", "utf8"), "utf8"],
  ["latin1", Buffer.from([0x63, 0x61, 0x66, 0xe9]), "latin1"], // "café" in ISO-8859-1
  ["cp1252", Buffer.from([0x80, 0x20, 0x93, 0x71, 0x94, 0x9f]), "latin1"], // "€ “q”Ÿ" in cp1252
];

test("a .drv with UTF-8, latin1 or cp1252 bytes round-trips byte for byte and passes its path check", async () => {
  const dir = tempDir();
  for (const [name, value, encoding] of CASES) {
    const drvPath = run("nix-instantiate", [
      nixFileWithBytes(dir, name, value, `${Date.now()}`),
    ]).trim();
    const bytes = readFileSync(drvPath);
    assert.ok(bytes.includes(value), `${name}: Nix wrote the bytes as they were`);
    const drv = parseDerivationBytes(bytes, drvPath);
    assert.equal(drv.encoding, encoding, name);
    assert.ok(unparseDerivationBytes(drv).equals(bytes), `${name}: round trip`);
    checkDerivationPaths(drvPath, bytes, drv, "/nix/store");
    const greeting = envValue(drv, "greeting") ?? "";
    assert.ok(
      Buffer.from(greeting, encoding === "latin1" ? "latin1" : "utf8").equals(value),
      `${name}: the env value keeps its bytes`,
    );
    assert.equal((await readDerivationFile(drvPath)).encoding, encoding);
  }
});

test("attesting a latin1 derivation: signed, verified, the derivation marked nix.encoding latin1", () => {
  const env = cliHome();
  assert.equal(provenix(["keygen"], env).code, 0);
  const dir = tempDir();
  const [, value] = CASES[1] as [string, Buffer, string];
  const out = run("nix-build", [
    nixFileWithBytes(dir, "latin1", value, `attest-${Date.now()}`),
    "--no-out-link",
  ]).trim();
  const a = provenix(["attest", out], env);
  assert.equal(a.code, 0, a.stderr);
  const v = provenix(["verify", out], env);
  assert.equal(v.code, 0, v.stdout);
  const shown = JSON.parse(provenix(["show", "--json", "--statement", out], env).stdout) as {
    attestations: {
      statement: {
        predicate: {
          buildDefinition: { resolvedDependencies: { annotations?: Record<string, string> }[] };
        };
      };
    }[];
  };
  const drvDep = shown.attestations[0]?.statement.predicate.buildDefinition.resolvedDependencies[0];
  assert.equal(drvDep?.annotations?.["nix.kind"], "derivation");
  assert.equal(drvDep?.annotations?.["nix.encoding"], "latin1");
});
