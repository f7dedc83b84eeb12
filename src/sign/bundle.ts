import {
  assertBundle,
  BUNDLE_V03_MEDIA_TYPE,
  bundleFromJSON,
  bundleToJSON,
  type Bundle,
} from "@sigstore/bundle";
import { preAuthEncoding } from "./dsse.js";
import { SignError } from "./error.js";
import { sigstoreKeyHint, type Signer } from "./keys.js";

export { BUNDLE_V03_MEDIA_TYPE };

/** A DSSE envelope as signed: the payload is the exact bytes the signature covers. */
export interface Envelope {
  readonly payloadType: string;
  readonly payload: Buffer;
  readonly signatures: readonly { readonly keyid: string; readonly sig: Buffer }[];
}

export interface ParsedBundle {
  readonly mediaType: string;
  /** The whole bundle, for verifying its certificate, log entries and timestamps. */
  readonly bundle: Bundle;
  /** Signed keylessly: the verification material is a certificate, not a key hint. */
  readonly certificate: boolean;
  /** The verification material's public-key hint, if the bundle names one. */
  readonly keyHint: string | undefined;
  readonly envelope: Envelope;
}

/**
 * Signs statements into Sigstore bundles: with a key (here), or keyless, or with
 * timestamps from a TSA (src/system/sigstore-signing.ts, which talk to services).
 */
export interface BundleSigner {
  /** How messages name the signer before it signs: a key's keyid, or "keyless". */
  readonly name: string;
  /** The bundle's JSON bytes, and the signer as the attestation store records it (keyid). */
  signBundle(payload: Buffer, payloadType: string): Promise<{ bundle: Buffer; keyid: string }>;
}

/**
 * Sign `payload` as a DSSE envelope inside a Sigstore bundle v0.3 (the object;
 * `serializeBundle` gives its bytes).
 *
 * Keyids and hints as every verifier accepts them (docs/formats.md, "Keyids and hints"): the
 * DSSE signature's keyid is empty, as cosign and sigstore-go write it, because
 * go-securesystemslib (under cosign and sigstore-go) skips a signature whose keyid
 * differs from the one it computes for the key it was given; the verification
 * material's public-key hint is the key's SPKI SHA-256 in base64, as cosign and
 * sigstore-go write it.
 */
export function dsseBundle(payload: Buffer, payloadType: string, signer: Signer): Bundle {
  return envelopeBundle(
    payload,
    payloadType,
    signer,
    signer.sign(preAuthEncoding(payloadType, payload)),
  );
}

function envelopeBundle(payload: Buffer, payloadType: string, signer: Signer, sig: Buffer): Bundle {
  return {
    mediaType: BUNDLE_V03_MEDIA_TYPE,
    content: {
      $case: "dsseEnvelope",
      dsseEnvelope: { payload, payloadType, signatures: [{ keyid: "", sig }] },
    },
    verificationMaterial: {
      content: { $case: "publicKey", publicKey: { hint: sigstoreKeyHint(signer.publicKey) } },
      tlogEntries: [],
      timestampVerificationData: { rfc3161Timestamps: [] },
    },
  };
}

/** A bundle's JSON bytes, as they are stored and published. */
export function serializeBundle(bundle: Bundle): Buffer {
  return Buffer.from(JSON.stringify(bundleToJSON(bundle)), "utf8");
}

/** `dsseBundle`'s bytes. */
export function signBundle(payload: Buffer, payloadType: string, signer: Signer): Buffer {
  return serializeBundle(dsseBundle(payload, payloadType, signer));
}

/**
 * Signing with a key alone: no service is asked. A key file signs on libuv's
 * thread pool, so that a batch's signatures are made on all cores.
 */
export function keyBundleSigner(signer: Signer): BundleSigner {
  const keyid = signer.publicKey.keyid;
  return {
    name: keyid,
    async signBundle(payload, payloadType) {
      if (!signer.signAsync) return { bundle: signBundle(payload, payloadType, signer), keyid };
      const sig = await signer.signAsync(preAuthEncoding(payloadType, payload));
      return { bundle: serializeBundle(envelopeBundle(payload, payloadType, signer, sig)), keyid };
    },
  };
}

/** JSON from outside: not JSON is a MALFORMED_BUNDLE SignError naming `what`. */
function untrustedJson(bytes: Uint8Array, what: string): unknown {
  try {
    // A view of the bytes, not a copy (Buffer.from of a Uint8Array copies it).
    return JSON.parse(
      Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8"),
    );
  } catch (cause) {
    throw new SignError("MALFORMED_BUNDLE", `${what} is not valid JSON`, { cause });
  }
}

/**
 * A bundle's JSON with its DSSE payload decoded as the protobuf-specs decoder does it
 * (Node's base64), when the payload is a string, and a one-byte stand-in in its place.
 * That decoder copies the bytes twice, the first time one by one through an
 * iterator: it was a sixth of reading a stored bundle. parseBundle puts these bytes
 * in the stand-in's place before the bundle is checked.
 */
function withPayloadDecoded(json: object): { json: object; payload?: Buffer } {
  const env = (json as { dsseEnvelope?: unknown }).dsseEnvelope;
  if (env === null || typeof env !== "object") return { json };
  const payload = (env as { payload?: unknown }).payload;
  if (typeof payload !== "string") return { json };
  return {
    json: { ...json, dsseEnvelope: { ...env, payload: "AA==" } },
    payload: Buffer.from(payload, "base64"),
  };
}

/** Parse a Sigstore bundle that carries a DSSE envelope. Untrusted input: every failure is a SignError. */
export function parseBundle(bytes: Uint8Array, what = "bundle"): ParsedBundle {
  const json = untrustedJson(bytes, what);
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw new SignError("MALFORMED_BUNDLE", `${what} is not a JSON object`);
  }
  let bundle: ReturnType<typeof bundleFromJSON>;
  try {
    const { json: stood, payload } = withPayloadDecoded(json);
    bundle = bundleFromJSON(stood);
    if (payload && bundle.content.$case === "dsseEnvelope") {
      bundle.content.dsseEnvelope.payload = payload;
    }
    assertBundle(bundle);
  } catch (cause) {
    const fields = (cause as { fields?: string[] }).fields;
    const detail = fields && fields.length > 0 ? `: bad ${fields.join(", ")}` : "";
    throw new SignError("MALFORMED_BUNDLE", `${what} is not a valid Sigstore bundle${detail}`, {
      cause,
    });
  }
  if (bundle.content.$case !== "dsseEnvelope") {
    throw new SignError(
      "MALFORMED_BUNDLE",
      `${what} holds a message signature, not a DSSE envelope`,
    );
  }
  const env = bundle.content.dsseEnvelope;
  const material = bundle.verificationMaterial.content;
  return {
    mediaType: bundle.mediaType,
    bundle,
    certificate: material?.$case === "certificate" || material?.$case === "x509CertificateChain",
    keyHint: material?.$case === "publicKey" ? material.publicKey.hint : undefined,
    envelope: {
      payloadType: env.payloadType,
      payload: env.payload,
      signatures: env.signatures.map((s) => ({ keyid: s.keyid, sig: s.sig })),
    },
  };
}

/**
 * A DSSE envelope in its JSON form (cosign's `.att` layers, `.intoto.jsonl` lines) as a
 * Sigstore bundle v0.3 without a key hint, so that it is verified like any bundle.
 * The payloadType and payload bytes, all the signature covers, are kept exactly.
 */
export function bundleFromEnvelope(bytes: Uint8Array, what = "DSSE envelope"): Buffer {
  const e = untrustedJson(bytes, what) as {
    payloadType?: unknown;
    payload?: unknown;
    signatures?: unknown;
  } | null;
  if (
    e === null ||
    typeof e !== "object" ||
    typeof e.payloadType !== "string" ||
    typeof e.payload !== "string" ||
    !Array.isArray(e.signatures)
  ) {
    throw new SignError(
      "MALFORMED_BUNDLE",
      `${what} is not a DSSE envelope (needs payloadType, payload, signatures)`,
    );
  }
  return Buffer.from(
    JSON.stringify({
      mediaType: BUNDLE_V03_MEDIA_TYPE,
      verificationMaterial: { publicKey: { hint: "" } },
      dsseEnvelope: { payload: e.payload, payloadType: e.payloadType, signatures: e.signatures },
    }),
  );
}
