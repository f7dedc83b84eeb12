import { OciError } from "./error.js";

// docker-archive (`docker save`, Nix dockerTools.buildImage / buildLayeredImage):
// a tar holding manifest.json, the image config and one uncompressed tar per layer.

export interface DockerArchiveEntry {
  /** Path of the config JSON inside the archive. */
  readonly config: string;
  /** Paths of the layer tars, bottom first. */
  readonly layers: readonly string[];
  readonly repoTags: readonly string[];
}

/** Normalise a tar entry name: no leading "./" or "/". */
export function entryName(name: string): string {
  return name.replace(/^(\.\/|\/)+/, "");
}

export function parseDockerManifest(bytes: Buffer, archive: string): DockerArchiveEntry {
  let v: unknown;
  try {
    v = JSON.parse(bytes.toString("utf8"));
  } catch {
    throw new OciError("MALFORMED_ARCHIVE", `${archive}: manifest.json is not JSON`);
  }
  const first = (Array.isArray(v) ? v[0] : undefined) as
    { Config?: unknown; Layers?: unknown; RepoTags?: unknown } | undefined;
  if (
    !first ||
    typeof first.Config !== "string" ||
    !Array.isArray(first.Layers) ||
    !first.Layers.every((l) => typeof l === "string")
  ) {
    throw new OciError(
      "MALFORMED_ARCHIVE",
      `${archive}: manifest.json does not describe an image (Config, Layers)`,
    );
  }
  if ((v as unknown[]).length > 1) {
    throw new OciError("MALFORMED_ARCHIVE", `${archive} holds several images; push one at a time`);
  }
  return {
    config: entryName(first.Config),
    layers: first.Layers.map(entryName),
    repoTags: Array.isArray(first.RepoTags)
      ? first.RepoTags.filter((t): t is string => typeof t === "string")
      : [],
  };
}

/** The layer digests an image config declares (rootfs.diff_ids), in order. */
export function diffIds(config: Buffer, archive: string): string[] {
  let v: unknown;
  try {
    v = JSON.parse(config.toString("utf8"));
  } catch {
    throw new OciError("MALFORMED_ARCHIVE", `${archive}: the image config is not JSON`);
  }
  const ids = (v as { rootfs?: { diff_ids?: unknown } } | null)?.rootfs?.diff_ids;
  if (
    !Array.isArray(ids) ||
    !ids.every((d) => typeof d === "string" && /^sha256:[0-9a-f]{64}$/.test(d))
  ) {
    throw new OciError(
      "MALFORMED_ARCHIVE",
      `${archive}: the image config has no valid rootfs.diff_ids`,
    );
  }
  return ids as string[];
}
