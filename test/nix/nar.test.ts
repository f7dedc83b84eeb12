import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkfifoSync } from "../helpers/fifo.js";
import { join } from "node:path";
import { test } from "node:test";
import { dumpNar, hashNar } from "../../src/system/nar-dump.js";
import { hashNars } from "../../src/system/nar-hash-pool.js";
import { build, nixPathInfo, run, tempDir, useTestNix } from "../helpers/nix.js";

useTestNix();

function nixHash(path: string): string {
  return run("nix-store", ["--query", "--hash", path]).trim();
}

function sha256Base32(hex: string): string {
  return "sha256:" + run("nix-hash", ["--type", "sha256", "--to-base32", hex]).trim();
}

test("NAR bytes equal nix-store --dump for every kind of node", () => {
  const [tree] = build("tree");
  const [multi] = build("multi");
  const [app] = build("app");
  for (const p of [
    multi,
    app,
    `${tree}/a`,
    `${tree}/a/exe`,
    `${tree}/a/b/empty`,
    `${tree}/a/link`,
    `${tree}/empty-dir`,
  ] as string[]) {
    const chunks: Buffer[] = [];
    dumpNar(p, (c) => chunks.push(Buffer.from(c)));
    const ours = Buffer.concat(chunks);
    const theirs = execFileSync("nix-store", ["--dump", p], { maxBuffer: 1 << 30 });
    assert.ok(ours.equals(theirs), `NAR of ${p}`);
  }
});

test("streaming NAR sha256 equals nix-store --query --hash (regular, executable, empty, symlinks, dirs, 50 MB file)", () => {
  const paths = ["tree", "app", "multi", "structured", "srcDir", "srcFlat"].flatMap((a) =>
    build(a),
  );
  for (const p of paths) {
    const { sha256, size } = hashNar(p);
    assert.equal(sha256Base32(sha256), nixHash(p), p);
    assert.equal(size, nixPathInfo(p).narSize, `narSize of ${p}`);
  }
});

test("NAR sha256 of a path outside the store equals nix hash path", () => {
  const dir = tempDir();
  execFileSync("sh", [
    "-c",
    `mkdir -p ${dir}/x/y && printf abc > ${dir}/x/y/f && ln -s y ${dir}/x/l && printf z > ${dir}/x/é`,
  ]);
  const expected = run("nix", [
    "hash",
    "path",
    "--type",
    "sha256",
    "--base16",
    join(dir, "x"),
  ]).trim();
  assert.equal(hashNar(join(dir, "x")).sha256, expected);
  assert.equal(
    hashNar(join(dir, "x")).sha256,
    createHash("sha256")
      .update(execFileSync("nix-store", ["--dump", join(dir, "x")]))
      .digest("hex"),
  );
});

test("files that cannot be in a NAR, and missing paths, give clear errors", () => {
  const dir = tempDir();
  mkfifoSync(join(dir, "fifo"));
  assert.throws(() => hashNar(dir), { code: "NAR_UNSUPPORTED_FILE", message: /fifo is neither/ });
  assert.throws(() => hashNar(join(dir, "missing")), {
    code: "NOT_VALID",
    message: /does not exist/,
  });
});

test("hashNars on worker threads, largest first, equals Nix's record for every path; a bad path is its error", async () => {
  const paths = run("nix-store", ["--query", "--requisites", ...build("app", `pool-${Date.now()}`)])
    .split("\n")
    .filter((p) => p !== "");
  // Enough paths that the pool starts its threads (64 or more), each path several times over.
  const many = Array.from({ length: 80 }, (_, i) => paths[i % paths.length] as string);
  const sized = [...new Set(many)].map((p, i) => ({ path: p, narSize: i * 1000 }));
  const inputs = many.map((p, i) => ({ path: `${p}`, narSize: i }));
  const threaded = await hashNars(inputs, 2);
  for (const { path } of sized) {
    assert.equal(sha256Base32(threaded.get(path)?.sha256 ?? ""), nixHash(path), path);
  }
  const dir = tempDir();
  mkfifoSync(join(dir, "fifo"));
  await assert.rejects(hashNars([...inputs, { path: dir, narSize: 1 }], 2), {
    code: "NAR_UNSUPPORTED_FILE",
    message: /fifo is neither/,
  });
});
