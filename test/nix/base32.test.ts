import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";
import { decodeNixBase32, encodeNixBase32, NixError, parseNixHash } from "../../src/nix/index.js";
import { run, useTestNix } from "../helpers/nix.js";

useTestNix();

test("nix-base32 encoding equals nix-hash --to-base32 for many digests", () => {
  const hexes = Array.from({ length: 40 }, (_, i) =>
    createHash("sha256").update(`x${i}`).digest("hex"),
  );
  hexes.push("00".repeat(32), "ff".repeat(32));
  const sha1 = createHash("sha1").update("y").digest("hex");
  const expected = run("nix-hash", ["--type", "sha256", "--to-base32", ...hexes])
    .trim()
    .split("\n");
  const expectedSha1 = run("nix-hash", ["--type", "sha1", "--to-base32", sha1]).trim();
  hexes.forEach((hex, i) => {
    const b32 = encodeNixBase32(Buffer.from(hex, "hex"));
    assert.equal(b32, expected[i]);
    assert.equal(decodeNixBase32(b32, 32).toString("hex"), hex);
  });
  assert.equal(encodeNixBase32(Buffer.from(sha1, "hex")), expectedSha1);
  assert.equal(decodeNixBase32(expectedSha1, 20).toString("hex"), sha1);
});

test("nix-base32 rejects bad characters, wrong lengths and overflow", () => {
  const good = encodeNixBase32(Buffer.alloc(32, 7));
  assert.throws(() => decodeNixBase32(good.slice(1), 32), { code: "INVALID_BASE32" });
  assert.throws(
    () => decodeNixBase32("e" + good.slice(1), 32),
    (e) => e instanceof NixError && /'e'/.test(e.message),
  );
  // 52 characters hold 260 bits: a top digit above 1 cannot fit in 256.
  assert.throws(() => decodeNixBase32("z" + good.slice(1), 32), /overflows/);
});

test("parseNixHash reads every form Nix prints", () => {
  const hex = createHash("sha256").update("hello").digest("hex");
  const b32 = run("nix-hash", ["--type", "sha256", "--to-base32", hex]).trim();
  const sri = "sha256-" + Buffer.from(hex, "hex").toString("base64");
  for (const form of [
    `sha256:${hex}`,
    `sha256:${b32}`,
    sri,
    `sha256:${Buffer.from(hex, "hex").toString("base64")}`,
  ]) {
    assert.deepEqual(parseNixHash(form), { algorithm: "sha256", hex });
  }
  assert.deepEqual(parseNixHash(hex, "sha256"), { algorithm: "sha256", hex });
  assert.throws(() => parseNixHash("sha256:nothex"), { code: "INVALID_HASH" });
  assert.throws(() => parseNixHash("sha257:" + hex), { code: "INVALID_HASH" });
  assert.throws(() => parseNixHash("sha256-AAAA"), { code: "INVALID_HASH" });
});
