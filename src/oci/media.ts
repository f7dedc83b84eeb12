// Media types (opencontainers/image-spec v1.1, distribution-spec v1.1, Docker v2 schema 2,
// sigstore/protobuf-specs, cosign).

export const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
export const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
export const OCI_CONFIG = "application/vnd.oci.image.config.v1+json";
export const OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar";
export const OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip";
export const OCI_EMPTY = "application/vnd.oci.empty.v1+json";
export const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
export const DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";
export const DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json";
export const DOCKER_LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar";
export const DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip";
export const SIGSTORE_BUNDLE_V03 = "application/vnd.dev.sigstore.bundle.v0.3+json";
export const DSSE_ENVELOPE = "application/vnd.dsse.envelope.v1+json";

/** The empty JSON object `{}`, the config of artifacts that have none (image-spec 1.1). */
export const EMPTY_JSON = Buffer.from("{}");
export const EMPTY_JSON_DIGEST =
  "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

export const MANIFEST_TYPES = [OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_MANIFEST_LIST];

/** Registries must accept manifests of at least 4 MiB (distribution-spec); we refuse larger. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
