import { createHash } from "node:crypto";
import {
  closeSync,
  createReadStream,
  createWriteStream,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip, createGzip } from "node:zlib";
import {
  BLOCK,
  diffIds,
  entryName,
  OCI_LAYER_GZIP,
  OCI_MANIFEST,
  OciError,
  padded,
  parseDockerManifest,
  parseIndex,
  parseManifest,
  parseTarHeader,
  paxPath,
  type Descriptor,
  ociDigest,
} from "../oci/index.js";

/** A blob of an image on disk: where its bytes are, and what they should hash to. */
export interface LocalBlob {
  readonly digest: string;
  readonly size: number;
  readonly mediaType?: string;
  /** A fresh stream of exactly the blob's bytes (callers may retry). */
  open(): Readable;
}

/** An image read from a Nix output: its config and layers, ready to push. */
export interface ImageSource {
  readonly kind: "docker-archive" | "oci-layout";
  readonly config: { bytes: Buffer; digest: string };
  readonly layers: readonly LocalBlob[];
  readonly repoTags: readonly string[];
  /** An OCI layout's own manifest, pushed byte for byte (docker-archives get one written). */
  readonly manifest?: Buffer;
  /** Remove temporary files (a decompressed archive). */
  close(): void;
}

function isGzip(file: string): boolean {
  const fd = openSync(file, "r");
  try {
    const b = Buffer.alloc(2);
    readSync(fd, b, 0, 2, 0);
    return b[0] === 0x1f && b[1] === 0x8b;
  } finally {
    closeSync(fd);
  }
}

/** Offsets of the files in an uncompressed tar, read header by header (file data is skipped). */
function scanTar(file: string): Map<string, { offset: number; size: number }> {
  const entries = new Map<string, { offset: number; size: number }>();
  const total = statSync(file).size;
  const fd = openSync(file, "r");
  const header = Buffer.alloc(BLOCK);
  try {
    let pos = 0;
    let longName: string | undefined;
    while (pos + BLOCK <= total) {
      readSync(fd, header, 0, BLOCK, pos);
      const h = parseTarHeader(header, file);
      if (!h) break;
      const data = pos + BLOCK;
      if (data + h.size > total) {
        throw new OciError("MALFORMED_ARCHIVE", `${file}: truncated tar archive (${h.name})`);
      }
      if (h.type === "L" || h.type === "x") {
        const buf = Buffer.alloc(h.size);
        readSync(fd, buf, 0, h.size, data);
        longName = h.type === "L" ? buf.toString("utf8").replace(/\0+$/, "") : paxPath(buf);
      } else if (h.type === "0" || h.type === "7") {
        entries.set(entryName(longName ?? h.name), { offset: data, size: h.size });
        longName = undefined;
      } else longName = undefined;
      pos = data + padded(h.size);
    }
  } finally {
    closeSync(fd);
  }
  return entries;
}

async function openDockerArchive(file: string): Promise<ImageSource> {
  let tarFile = file;
  let temp: string | undefined;
  if (isGzip(file)) {
    temp = mkdtempSync(join(tmpdir(), "provenix-image-"));
    tarFile = join(temp, "image.tar");
    try {
      await pipeline(createReadStream(file), createGunzip(), createWriteStream(tarFile));
    } catch (e) {
      rmSync(temp, { recursive: true, force: true });
      throw new OciError(
        "MALFORMED_ARCHIVE",
        `${file}: not a valid gzip archive (${(e as Error).message})`,
      );
    }
  }
  const close = () => {
    if (temp) rmSync(temp, { recursive: true, force: true });
  };
  try {
    const entries = scanTar(tarFile);
    const read = (name: string) => {
      const e = entries.get(name);
      if (!e) throw new OciError("MALFORMED_ARCHIVE", `${file}: ${name} is missing`);
      const b = Buffer.alloc(e.size);
      const fd = openSync(tarFile, "r");
      try {
        readSync(fd, b, 0, e.size, e.offset);
      } finally {
        closeSync(fd);
      }
      return b;
    };
    if (!entries.has("manifest.json")) {
      throw new OciError(
        "NOT_AN_IMAGE",
        `${file} is a tar archive without manifest.json: not a docker-archive image`,
      );
    }
    const m = parseDockerManifest(read("manifest.json"), file);
    const config = read(m.config);
    const ids = diffIds(config, file);
    if (ids.length !== m.layers.length) {
      throw new OciError(
        "MALFORMED_ARCHIVE",
        `${file}: ${m.layers.length} layers, but the config lists ${ids.length} diff_ids`,
      );
    }
    const layers = m.layers.map((name, i): LocalBlob => {
      const e = entries.get(name);
      if (!e) throw new OciError("MALFORMED_ARCHIVE", `${file}: layer ${name} is missing`);
      return {
        digest: ids[i] ?? "",
        size: e.size,
        open: () =>
          e.size === 0
            ? Readable.from([])
            : createReadStream(tarFile, { start: e.offset, end: e.offset + e.size - 1 }),
      };
    });
    return {
      kind: "docker-archive",
      config: { bytes: config, digest: ociDigest(config) },
      layers,
      repoTags: m.repoTags,
      close,
    };
  } catch (e) {
    close();
    throw e;
  }
}

function openOciLayout(dir: string): ImageSource {
  const blob = (digest: string) => join(dir, "blobs", ...digest.split(":"));
  const index = parseIndex(readFileSync(join(dir, "index.json")), `${dir}/index.json`);
  const [first, ...more] = index.manifests.filter(
    (d) => d.mediaType === OCI_MANIFEST || d.mediaType === undefined,
  );
  if (!first || more.length > 0) {
    throw new OciError(
      "NOT_AN_IMAGE",
      `${dir}: index.json must list exactly one image manifest (found ${more.length + (first ? 1 : 0)})`,
    );
  }
  const manifestBytes = readFileSync(blob(first.digest));
  if (ociDigest(manifestBytes) !== first.digest) {
    throw new OciError(
      "DIGEST_MISMATCH",
      `${dir}: manifest ${first.digest} does not match its bytes`,
    );
  }
  const manifest = parseManifest(manifestBytes, `${dir} manifest`);
  const config = readFileSync(blob(manifest.config.digest));
  return {
    kind: "oci-layout",
    config: { bytes: config, digest: ociDigest(config) },
    layers: manifest.layers.map((l: Descriptor): LocalBlob => ({
      digest: l.digest,
      size: l.size,
      mediaType: l.mediaType,
      open: () => createReadStream(blob(l.digest)),
    })),
    repoTags: [],
    manifest: manifestBytes,
    close: () => undefined,
  };
}

/**
 * Recognise an image output: a docker-archive (tar or tar.gz, as dockerTools
 * writes) or an OCI image layout directory. Layers are not read into memory.
 */
export async function openImage(path: string): Promise<ImageSource> {
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new OciError("NOT_AN_IMAGE", `${path} does not exist`);
  }
  if (st.isDirectory()) {
    if (existsSync(join(path, "oci-layout")) && existsSync(join(path, "index.json"))) {
      return openOciLayout(path);
    }
    throw new OciError(
      "NOT_AN_IMAGE",
      `${path} is a directory but not an OCI image layout (no oci-layout and index.json)`,
    );
  }
  return openDockerArchive(path);
}

/**
 * The same image with its uncompressed layers gzip-compressed into temporary
 * files (for a Docker v2 manifest, whose layers must be gzip). The config, and
 * so the diff_ids, stay as they are. close() removes the files.
 */
export async function withGzipLayers(image: ImageSource): Promise<ImageSource> {
  const dir = mkdtempSync(join(tmpdir(), "provenix-gzip-"));
  try {
    const layers: LocalBlob[] = [];
    for (const [i, layer] of image.layers.entries()) {
      if (layer.mediaType === OCI_LAYER_GZIP) {
        layers.push(layer);
        continue;
      }
      const file = join(dir, `${i}.tar.gz`);
      const hash = createHash("sha256");
      let size = 0;
      const counter = new Transform({
        transform(chunk: Buffer, _enc, done) {
          hash.update(chunk);
          size += chunk.length;
          done(null, chunk);
        },
      });
      await pipeline(layer.open(), createGzip(), counter, createWriteStream(file));
      layers.push({
        digest: "sha256:" + hash.digest("hex"),
        size,
        mediaType: OCI_LAYER_GZIP,
        open: () => createReadStream(file),
      });
    }
    // A new manifest is written for the compressed layers: an OCI layout's own no longer applies.
    return {
      kind: image.kind,
      config: image.config,
      repoTags: image.repoTags,
      layers,
      close: () => {
        rmSync(dir, { recursive: true, force: true });
        image.close();
      },
    };
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}
