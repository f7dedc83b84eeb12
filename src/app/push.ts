import { Readable } from "node:stream";
import {
  bundleReferrer,
  cosignAttestationManifest,
  DSSE_ENVELOPE,
  EMPTY_JSON,
  imageManifest,
  manifestBytes,
  OCI_EMPTY,
  OCI_INDEX,
  OCI_MANIFEST,
  OciError,
  parseIndex,
  parseManifest,
  referrerDescriptor,
  referrersTag,
  SIGSTORE_BUNDLE_V03,
  withReferrer,
  type Descriptor,
  type ImageReference,
  type ManifestFormat,
  ociDigest,
} from "../oci/index.js";
import { SLSA_PROVENANCE_V1 } from "../attest/index.js";
import { bundleFromEnvelope, parseBundle, type BundleSigner } from "../sign/index.js";
import { derivationOf } from "../system/targets.js";
import { provenanceFor, signAndStore, type AttestContext } from "./attest.js";
import { withGzipLayers, type ImageSource } from "../system/image-source.js";
import type { RegistryClient } from "../system/registry.js";

export interface PushedBlob {
  readonly digest: string;
  readonly size: number;
  readonly result: "exists" | "mounted" | "uploaded";
}

export interface PushResult {
  /** The image manifest as pushed. */
  readonly manifest: Descriptor;
  readonly blobs: readonly PushedBlob[];
}

export type PushEvent = {
  readonly done: number;
  readonly total: number;
  readonly blob: PushedBlob;
};

/**
 * Push an image: config and layers (skipping blobs the registry has, mounting
 * from `mountFrom` when given), then the OCI manifest under the tag (or by
 * digest). The manifest is pushed last, so a failure leaves no tag pointing at
 * a partial image.
 */
export async function pushImage(
  client: RegistryClient,
  ref: ImageReference,
  image: ImageSource,
  o: PushOptions = {},
): Promise<PushResult> {
  if (o.format !== "docker") return pushPrepared(client, ref, image, "oci", o);
  // Docker v2 wants gzip layers: compress them (into temporary files) first.
  const gzipped = await withGzipLayers(image);
  try {
    return await pushPrepared(client, ref, gzipped, "docker", o);
  } finally {
    gzipped.close();
  }
}

export interface PushOptions {
  readonly mountFrom?: string;
  /** oci (default): the layers as they are; docker: Docker v2 schema 2 with gzip layers. */
  readonly format?: ManifestFormat;
  readonly progress?: (e: PushEvent) => void;
}

async function pushPrepared(
  client: RegistryClient,
  ref: ImageReference,
  image: ImageSource,
  format: ManifestFormat,
  o: PushOptions,
): Promise<PushResult> {
  const repo = ref.repository;
  const blobs: PushedBlob[] = [];
  const total = image.layers.length + 1;
  const record = (b: PushedBlob) => {
    blobs.push(b);
    o.progress?.({ done: blobs.length, total, blob: b });
  };
  const config = image.config;
  const configBlob = bufferBlob(config.bytes);
  record({
    digest: configBlob.digest,
    size: configBlob.size,
    result: await client.pushBlob(repo, configBlob, o.mountFrom),
  });
  for (const layer of image.layers) {
    record({
      digest: layer.digest,
      size: layer.size,
      result: await client.pushBlob(repo, layer, o.mountFrom),
    });
  }
  const manifest = imageManifest(
    { digest: config.digest, size: config.bytes.length },
    image.layers.map((l) => ({
      digest: l.digest,
      size: l.size,
      ...(l.mediaType ? { mediaType: l.mediaType } : {}),
    })),
    format,
  );
  const bytes = image.manifest ?? manifestBytes(manifest);
  const digest = ociDigest(bytes);
  if (ref.digest !== undefined && ref.digest !== digest) {
    throw new OciError("DIGEST_MISMATCH", `the image's manifest is ${digest}, not ${ref.digest}`);
  }
  await client.putManifest(repo, ref.tag ?? digest, manifest.mediaType, bytes);
  return { manifest: { mediaType: manifest.mediaType, digest, size: bytes.length }, blobs };
}

/** A small blob held in memory, ready for RegistryClient.pushBlob. */
function bufferBlob(bytes: Buffer) {
  return { digest: ociDigest(bytes), size: bytes.length, open: () => Readable.from([bytes]) };
}

/** Read-modify-write of an index or manifest under a tag, until our change is seen there. */
async function updateTag(
  client: RegistryClient,
  repo: string,
  tag: string,
  change: (
    current: Buffer | undefined,
  ) => { bytes: Buffer; mediaType: string } | Promise<{ bytes: Buffer; mediaType: string }>,
  holds: (current: Buffer) => boolean,
): Promise<void> {
  for (let attempt = 1; attempt <= 8; attempt++) {
    const current = await client.getManifest(repo, tag);
    if (current && holds(current.bytes)) return;
    const next = await change(current?.bytes);
    await client.putManifest(repo, tag, next.mediaType, next.bytes);
    // Another writer may have replaced the tag meanwhile: read it back.
    const after = await client.getManifest(repo, tag);
    if (after && holds(after.bytes)) {
      // Give a concurrent writer that read before us the chance to be seen; then check again.
      await new Promise((r) => setTimeout(r, 50 * attempt));
      const settled = await client.getManifest(repo, tag);
      if (settled && holds(settled.bytes)) return;
    }
  }
  throw new OciError(
    "REGISTRY",
    `${client.o.registry}/${repo}:${tag} kept changing under concurrent writers`,
  );
}

export interface AttachResult {
  readonly referrer: string;
  /** How a client finds it: the registry's referrers API, or the referrers tag. */
  readonly via: "referrers-api" | "referrers-tag";
  /** cosign's legacy `sha256-<hex>.att` tag, when asked for. */
  readonly cosignTag?: string;
}

/**
 * Attach a Sigstore bundle to an image as an OCI 1.1 referrer. Where the
 * registry has no referrers API, the referrer is also listed in the index under
 * the `sha256-<hex>` tag (distribution-spec's fallback). Content-addressed, so
 * attaching the same bundle twice adds nothing; concurrent attaches each check
 * their entry survived.
 */
export async function attachBundle(
  client: RegistryClient,
  repo: string,
  subject: Descriptor,
  bundle: Buffer,
  predicateType: string,
  o: { cosignLegacy?: boolean } = {},
): Promise<AttachResult> {
  const empty = bufferBlob(EMPTY_JSON);
  const bundleBlob = bufferBlob(bundle);
  await client.pushBlob(repo, empty);
  await client.pushBlob(repo, bundleBlob);
  const manifest = bundleReferrer(subject, bundleBlob, predicateType);
  const bytes = manifestBytes(manifest);
  const digest = await client.putManifest(repo, ociDigest(bytes), OCI_MANIFEST, bytes);
  const api = await client.referrers(repo, subject.digest);
  let via: AttachResult["via"] = "referrers-api";
  if (api === undefined) {
    via = "referrers-tag";
    const desc = referrerDescriptor(manifest, digest, bytes.length);
    await updateTag(
      client,
      repo,
      referrersTag(subject.digest),
      (current) => ({
        mediaType: OCI_INDEX,
        bytes: manifestBytes(
          withReferrer(current ? parseIndex(current, "referrers index") : undefined, desc),
        ),
      }),
      (current) =>
        parseIndex(current, "referrers index").manifests.some((m) => m.digest === digest),
    );
  }
  let cosignTag: string | undefined;
  if (o.cosignLegacy) {
    const envelope = bufferBlob(Buffer.from(JSON.stringify(dsseEnvelopeJson(bundle))));
    await client.pushBlob(repo, envelope);
    cosignTag = `${referrersTag(subject.digest)}.att`;
    await updateTag(
      client,
      repo,
      cosignTag,
      async (current) => {
        const { manifest, config } = cosignAttestationManifest(
          current ? parseManifest(current, "cosign attestation manifest") : undefined,
          envelope,
          predicateType,
        );
        await client.pushBlob(repo, bufferBlob(config));
        return { mediaType: OCI_MANIFEST, bytes: manifestBytes(manifest) };
      },
      (current) =>
        parseManifest(current, "cosign attestation manifest").layers.some(
          (l) => l.digest === envelope.digest,
        ),
    );
  }
  return { referrer: digest, via, ...(cosignTag ? { cosignTag } : {}) };
}

/** The DSSE envelope of a bundle in the JSON form cosign stores: its field order, base64 payload and signatures. */
function dsseEnvelopeJson(bundle: Buffer) {
  const { envelope } = parseBundle(bundle);
  return {
    payloadType: envelope.payloadType,
    payload: envelope.payload.toString("base64"),
    signatures: envelope.signatures.map((s) => ({ keyid: s.keyid, sig: s.sig.toString("base64") })),
  };
}

export interface FoundBundle {
  /** The referrer manifest's digest, or for cosign's legacy tag the envelope layer's. */
  readonly referrer: string;
  /** Where it was found: an OCI 1.1 referrer, or a layer of cosign's `sha256-<hex>.att`. */
  readonly source: "referrer" | "cosign-att";
  readonly bundle: Buffer;
}

// The index entry's artifactType is a hint only: cosign 2.5 lists its bundle referrers
// as application/vnd.oci.empty.v1+json there (the config's media type); the referrer
// manifest itself is what counts.
const MAYBE_BUNDLE = new Set([undefined, SIGSTORE_BUNDLE_V03, OCI_EMPTY]);

/**
 * The Sigstore bundles attached to a manifest: OCI 1.1 referrers (the referrers API,
 * else the referrers tag), then the DSSE envelopes of cosign's legacy `.att` tag, each
 * wrapped as a bundle without verification material (the signed bytes unchanged).
 */
export async function findBundles(
  client: RegistryClient,
  repo: string,
  digest: string,
): Promise<{ via: AttachResult["via"] | "none"; bundles: FoundBundle[] }> {
  const api = await client.referrers(repo, digest);
  let via: AttachResult["via"] | "none" = "referrers-api";
  let index = api;
  if (index === undefined) {
    via = "referrers-tag";
    index = (await client.getManifest(repo, referrersTag(digest)))?.bytes;
  }
  if (index === undefined) via = "none";
  const bundles: FoundBundle[] = [];
  for (const d of index ? parseIndex(index, "referrers index").manifests : []) {
    if (!MAYBE_BUNDLE.has(d.artifactType)) continue;
    const m = await client.getManifest(repo, d.digest);
    if (!m) continue;
    const manifest = parseManifest(m.bytes, `referrer ${d.digest}`);
    if (manifest.artifactType !== SIGSTORE_BUNDLE_V03 || manifest.subject?.digest !== digest)
      continue;
    const layer = manifest.layers.find((l) => l.mediaType === SIGSTORE_BUNDLE_V03);
    if (!layer) continue;
    bundles.push({
      referrer: d.digest,
      source: "referrer",
      bundle: await client.getBlob(repo, layer.digest, 16 << 20),
    });
  }
  const att = await client.getManifest(repo, `${referrersTag(digest)}.att`);
  if (att) {
    for (const l of parseManifest(att.bytes, "cosign attestation manifest").layers) {
      if (l.mediaType !== DSSE_ENVELOPE) continue;
      const envelope = await client.getBlob(repo, l.digest, 16 << 20);
      bundles.push({
        referrer: l.digest,
        source: "cosign-att",
        bundle: bundleFromEnvelope(envelope, `cosign attestation layer ${l.digest}`),
      });
    }
  }
  return { via, bundles };
}

/** What attesting needs, but the signer (which is optional here: no signer, no attestation). */
export type ImageAttestContext = Omit<AttestContext, "signer">;

/**
 * Push an image output and, with a signer, sign provenance for its derivation
 * whose subjects are the store output and the image (`registry/repository`
 * with the manifest digest), keep it, and attach it to the image.
 */
export async function pushAndAttest(
  ctx: ImageAttestContext,
  client: RegistryClient,
  ref: ImageReference,
  output: string,
  image: ImageSource,
  o: PushOptions & { signer?: BundleSigner; cosignLegacy?: boolean } = {},
): Promise<{ pushed: PushResult; attestationId?: number; attached?: AttachResult }> {
  const pushed = await pushImage(client, ref, image, o);
  if (!o.signer) return { pushed };
  const drvPath = await derivationOf(ctx.nix, output);
  const statement = await provenanceFor(ctx, drvPath);
  statement.subject.push({
    name: `${ref.registry}/${ref.repository}`,
    digest: { sha256: pushed.manifest.digest.slice("sha256:".length) },
    annotations: { "nix.storePath": output },
  });
  const signed = await signAndStore(
    { signer: o.signer, store: ctx.store, builderId: ctx.builderId },
    statement,
    drvPath,
  );
  const attached = await attachBundle(
    client,
    ref.repository,
    pushed.manifest,
    signed.bundle,
    SLSA_PROVENANCE_V1,
    { cosignLegacy: o.cosignLegacy === true },
  );
  return { pushed, attestationId: signed.attestationId, attached };
}
