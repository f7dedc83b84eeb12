// Reading image archives written by GNU tar in each of its formats, and image references.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buffer } from "node:stream/consumers";
import test from "node:test";
import { OciError, parseReference, ociDigest } from "../../src/oci/index.js";
import { openImage } from "../../src/system/image-source.js";
import { tempDir } from "../helpers/nix.js";

/** A docker-archive whose layer paths are longer than ustar's 100-byte name field. */
function archive(
  format: "gnu" | "pax" | "ustar",
  gzip: boolean,
): { file: string; layers: Buffer[] } {
  const dir = tempDir();
  const root = join(dir, "root");
  const deep = "d".repeat(60) + "/" + "e".repeat(60);
  const layers = [
    Buffer.from("first layer\n".repeat(100)),
    Buffer.alloc(0),
    Buffer.alloc(70_000, 7),
  ];
  const names = layers.map((_, i) => `${deep}/layer-${i}.tar`);
  mkdirSync(join(root, deep), { recursive: true });
  layers.forEach((l, i) => writeFileSync(join(root, names[i] ?? ""), l));
  const config = Buffer.from(
    JSON.stringify({ rootfs: { type: "layers", diff_ids: layers.map(ociDigest) }, os: "linux" }),
  );
  writeFileSync(join(root, "config.json"), config);
  writeFileSync(
    join(root, "manifest.json"),
    JSON.stringify([{ Config: "config.json", RepoTags: ["x:1"], Layers: names }]),
  );
  const file = join(dir, gzip ? "image.tar.gz" : "image.tar");
  const args = [
    `--format=${format}`,
    "-C",
    root,
    "-cf",
    "-",
    "manifest.json",
    "config.json",
    ...names,
  ];
  const tar = execFileSync("tar", args, { maxBuffer: 1 << 26 });
  writeFileSync(file, gzip ? execFileSync("gzip", ["-n"], { input: tar }) : tar);
  return { file, layers };
}

for (const format of ["gnu", "pax", "ustar"] as const) {
  for (const gzip of [false, true]) {
    test(`docker-archive written by GNU tar --format=${format}${gzip ? ", gzip" : ""}: config and layers read back exactly`, async () => {
      const { file, layers } = archive(format, gzip);
      const image = await openImage(file);
      try {
        assert.equal(image.kind, "docker-archive");
        assert.deepEqual(image.repoTags, ["x:1"]);
        assert.equal(image.layers.length, 3);
        for (const [i, l] of image.layers.entries()) {
          const bytes = await buffer(l.open());
          assert.equal(ociDigest(bytes), ociDigest(layers[i] ?? Buffer.alloc(0)));
          assert.equal(l.digest, ociDigest(bytes));
          assert.equal(l.size, bytes.length);
        }
      } finally {
        image.close();
      }
    });
  }
}

test("image references: registry, repository, tag, digest; bad ones refused with the reason", () => {
  const d = "sha256:" + "a".repeat(64);
  assert.deepEqual(parseReference("127.0.0.1:5000/nix/app:v1"), {
    registry: "127.0.0.1:5000",
    repository: "nix/app",
    tag: "v1",
  });
  assert.deepEqual(parseReference(`oci://registry.example.com/a/b/c@${d}`), {
    registry: "registry.example.com",
    repository: "a/b/c",
    digest: d,
  });
  assert.deepEqual(parseReference(`localhost:5000/app:1.0@${d}`), {
    registry: "localhost:5000",
    repository: "app",
    tag: "1.0",
    digest: d,
  });
  for (const [bad, why] of [
    ["app:v1", /names no registry/],
    ["r.example/App:v1", /not a valid image reference/],
    ["r.example/app@sha256:xyz", /is not a sha256 digest/],
    ["r.example/app:-bad", /is not a valid tag/],
  ] as const) {
    assert.throws(
      () => parseReference(bad),
      (e: unknown) => e instanceof OciError && why.test(e.message),
    );
  }
});
