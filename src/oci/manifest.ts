import { ociDigest } from "./digest.js";
import { OciError } from "./error.js";
import {
  DOCKER_CONFIG,
  DOCKER_LAYER_GZIP,
  DOCKER_MANIFEST,
  DSSE_ENVELOPE,
  EMPTY_JSON_DIGEST,
  OCI_CONFIG,
  OCI_EMPTY,
  OCI_INDEX,
  OCI_LAYER_GZIP,
  OCI_LAYER_TAR,
  OCI_MANIFEST,
  SIGSTORE_BUNDLE_V03,
} from "./media.js";

export interface Descriptor {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
  readonly artifactType?: string;
  readonly annotations?: Record<string, string>;
}

export interface Manifest {
  readonly schemaVersion: 2;
  readonly mediaType: string;
  readonly artifactType?: string;
  readonly config: Descriptor;
  readonly layers: readonly Descriptor[];
  readonly subject?: Descriptor;
  readonly annotations?: Record<string, string>;
}

export interface Index {
  readonly schemaVersion: 2;
  readonly mediaType: typeof OCI_INDEX;
  readonly manifests: readonly Descriptor[];
}

/**
 * The manifest of an image whose layers are the uncompressed tars of a
 * docker-archive: each layer's digest is its diff_id, so the config is kept
 * byte for byte and stays valid.
 */
export function imageManifest(
  config: { digest: string; size: number },
  layers: readonly { digest: string; size: number; mediaType?: string }[],
  format: ManifestFormat = "oci",
): Manifest {
  const docker = format === "docker";
  return {
    schemaVersion: 2,
    mediaType: docker ? DOCKER_MANIFEST : OCI_MANIFEST,
    config: {
      mediaType: docker ? DOCKER_CONFIG : OCI_CONFIG,
      digest: config.digest,
      size: config.size,
    },
    layers: layers.map((x) => {
      const type = x.mediaType ?? OCI_LAYER_TAR;
      if (docker && type !== OCI_LAYER_GZIP && type !== DOCKER_LAYER_GZIP) {
        throw new OciError(
          "NOT_AN_IMAGE",
          `a Docker v2 manifest needs gzip layers; ${x.digest} is ${type}`,
        );
      }
      return { mediaType: docker ? DOCKER_LAYER_GZIP : type, digest: x.digest, size: x.size };
    }),
  };
}

/**
 * oci: OCI image manifest (layers as they are); docker: Docker v2 schema 2
 * (application/vnd.docker.distribution.manifest.v2+json), whose layers must be gzip.
 */
export type ManifestFormat = "oci" | "docker";

/** Canonical bytes of a manifest or index we write: what its digest is taken over. */
export function manifestBytes(m: Manifest | Index): Buffer {
  return Buffer.from(JSON.stringify(m));
}

/**
 * A Sigstore bundle attached to an image as an OCI 1.1 referrer, as cosign
 * (`--new-bundle-format`) and sigstore-js lay it out: artifactType the bundle
 * media type, the empty config, the bundle as the one layer, the image as subject.
 */
export function bundleReferrer(
  subject: Descriptor,
  bundle: { digest: string; size: number },
  predicateType: string,
): Manifest {
  return {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: SIGSTORE_BUNDLE_V03,
    config: { mediaType: OCI_EMPTY, digest: EMPTY_JSON_DIGEST, size: 2 },
    layers: [{ mediaType: SIGSTORE_BUNDLE_V03, digest: bundle.digest, size: bundle.size }],
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
    annotations: {
      "dev.sigstore.bundle.content": "dsse-envelope",
      "dev.sigstore.bundle.predicateType": predicateType,
    },
  };
}

/** The layer annotation cosign reads a signature from; empty for attestations (static/signature.go). */
export const COSIGN_SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature";

/**
 * cosign's legacy attestation layout (tag `sha256-<hex>.att`), as cosign 2 writes it
 * through go-containerregistry: one DSSE envelope per layer, each with an empty
 * `dev.cosignproject.cosign/signature` and a `predicateType` annotation, and an
 * image config listing the layers as its diff_ids. An envelope already there is
 * not added twice. Returns the manifest and its config's bytes.
 */
export function cosignAttestationManifest(
  existing: Manifest | undefined,
  envelope: { digest: string; size: number },
  predicateType: string,
): { manifest: Manifest; config: Buffer } {
  const layer: Descriptor = {
    mediaType: DSSE_ENVELOPE,
    size: envelope.size,
    digest: envelope.digest,
    annotations: { [COSIGN_SIGNATURE_ANNOTATION]: "", predicateType },
  };
  const layers = [...(existing?.layers ?? []).filter((l) => l.digest !== envelope.digest), layer];
  // go-containerregistry's empty.Image with the layers appended, in its field order.
  const config = Buffer.from(
    JSON.stringify({
      architecture: "",
      created: "0001-01-01T00:00:00Z",
      history: layers.map(() => ({ created: "0001-01-01T00:00:00Z" })),
      os: "",
      rootfs: { type: "layers", diff_ids: layers.map((l) => l.digest) },
      config: {},
    }),
  );
  return {
    manifest: {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, size: config.length, digest: ociDigest(config) },
      layers,
    },
    config,
  };
}

/** The tag of the referrers tag schema (distribution-spec 1.1): `sha256-<hex>`. */
export function referrersTag(digest: string): string {
  return digest.replace(":", "-");
}

/** Add a referrer to an index (the tag-schema fallback), once. */
export function withReferrer(index: Index | undefined, d: Descriptor): Index {
  const others = (index?.manifests ?? []).filter((m) => m.digest !== d.digest);
  return { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [...others, d] };
}

/** A descriptor of a referrer manifest, for an index: with its artifactType and annotations. */
export function referrerDescriptor(m: Manifest, digest: string, size: number): Descriptor {
  return {
    mediaType: m.mediaType,
    digest,
    size,
    ...(m.artifactType !== undefined ? { artifactType: m.artifactType } : {}),
    ...(m.annotations !== undefined ? { annotations: m.annotations } : {}),
  };
}

function isDescriptor(v: unknown): v is Descriptor {
  const d = v as Descriptor | null;
  return (
    d !== null &&
    typeof d === "object" &&
    typeof d.mediaType === "string" &&
    typeof d.digest === "string" &&
    /^sha256:[0-9a-f]{64}$/.test(d.digest) &&
    Number.isSafeInteger(d.size)
  );
}

function parseJson(bytes: Buffer, what: string): unknown {
  try {
    return JSON.parse(bytes.toString("utf8"));
  } catch {
    throw new OciError("REGISTRY", `${what} is not JSON`);
  }
}

export function parseManifest(bytes: Buffer, what: string): Manifest {
  const m = parseJson(bytes, what) as Manifest;
  if (
    m?.schemaVersion !== 2 ||
    !isDescriptor(m.config) ||
    !Array.isArray(m.layers) ||
    !m.layers.every(isDescriptor)
  ) {
    throw new OciError("REGISTRY", `${what} is not an image manifest`);
  }
  return m;
}

export function parseIndex(bytes: Buffer, what: string): Index {
  const i = parseJson(bytes, what) as Index;
  if (i?.schemaVersion !== 2 || !Array.isArray(i.manifests) || !i.manifests.every(isDescriptor)) {
    throw new OciError("REGISTRY", `${what} is not an image index`);
  }
  return i;
}
