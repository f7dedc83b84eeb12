import {
  assertBundle,
  BUNDLE_V03_MEDIA_TYPE,
  bundleFromJSON,
  bundleToJSON,
  toDSSEBundle,
} from "@sigstore/bundle";
import { preAuthEncoding } from "./dsse.js";
import { SignError } from "./error.js";
import type { Signer } from "./keys.js";

export { BUNDLE_V03_MEDIA_TYPE };

/** A DSSE envelope as signed: the payload is the exact bytes the signature covers. */
export interface Envelope {
  readonly payloadType: string;
  readonly payload: Buffer;
  readonly signatures: readonly { readonly keyid: string; readonly sig: Buffer }[];
}

export interface ParsedBundle {
  readonly mediaType: string;
  /** The verification material's public-key hint, if the bundle names one. */
  readonly keyHint: string | undefined;
  readonly envelope: Envelope;
}

/**
 * Sign `payload` as a DSSE envelope inside a Sigstore bundle v0.3 whose `publicKey`
 * hint equals the DSSE keyid. Returns the bundle's JSON bytes.
 */
export function signBundle(payload: Buffer, payloadType: string, signer: Signer): Buffer {
  const signature = signer.sign(preAuthEncoding(payloadType, payload));
  const bundle = toDSSEBundle({
    artifact: payload,
    artifactType: payloadType,
    signature,
    keyHint: signer.publicKey.keyid,
  });
  return Buffer.from(JSON.stringify(bundleToJSON(bundle)), "utf8");
}

/** Parse a Sigstore bundle that carries a DSSE envelope. Untrusted input: every failure is a SignError. */
export function parseBundle(bytes: Uint8Array, what = "bundle"): ParsedBundle {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes).toString("utf8"));
  } catch (cause) {
    throw new SignError("MALFORMED_BUNDLE", `${what} is not valid JSON`, { cause });
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw new SignError("MALFORMED_BUNDLE", `${what} is not a JSON object`);
  }
  let bundle: ReturnType<typeof bundleFromJSON>;
  try {
    bundle = bundleFromJSON(json);
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
    keyHint: material?.$case === "publicKey" ? material.publicKey.hint : undefined,
    envelope: {
      payloadType: env.payloadType,
      payload: env.payload,
      signatures: env.signatures.map((s) => ({ keyid: s.keyid, sig: s.sig })),
    },
  };
}
