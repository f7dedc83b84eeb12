import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign as cryptoSign,
  verify as cryptoVerify,
  type KeyObject,
} from "node:crypto";
import { SignError } from "./error.js";

export type KeyAlgorithm = "ed25519" | "ecdsa-p256";

/** A public key we can verify with, and the name provenix knows it by. */
export interface PublicKey {
  /**
   * provenix's name for the key (in the attestation store and in messages): the Nix
   * key name, or `sha256:<hex of SPKI DER>` for PEM keys. Bundles written before
   * 0.2 carry it as the DSSE keyid and public-key hint; newer ones carry
   * `sigstoreKeyHint` instead (docs/formats.md, "Keyids and hints").
   */
  readonly keyid: string;
  readonly algorithm: KeyAlgorithm;
  readonly key: KeyObject;
  /**
   * Who signed, when that is not the key: a keyless signer's certificate identity
   * (`keyless:<issuer>:<subject>`), whose key is new for every signature.
   */
  readonly identity?: string;
}

/** Signs bytes. The secret never leaves this object: no getter returns it. */
export interface Signer {
  readonly publicKey: PublicKey;
  sign(data: Uint8Array): Buffer;
  /** `sign` on libuv's thread pool, where the key allows it (key files; not tokens). */
  signAsync?(data: Uint8Array): Promise<Buffer>;
}

// RFC 8410: the DER prefixes of an Ed25519 PKCS#8 private key and SPKI public key.
const ED25519_PKCS8_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");
const ED25519_SPKI_PREFIX = Buffer.from("302a300506032b6570032100", "hex");

export function spkiDer(key: KeyObject): Buffer {
  return key.export({ format: "der", type: "spki" });
}

function algorithmOf(key: KeyObject): KeyAlgorithm {
  if (key.asymmetricKeyType === "ed25519") return "ed25519";
  if (key.asymmetricKeyType === "ec" && key.asymmetricKeyDetails?.namedCurve === "prime256v1") {
    return "ecdsa-p256";
  }
  throw new SignError(
    "UNSUPPORTED_KEY",
    `unsupported key type ${key.asymmetricKeyType ?? "unknown"}: use Ed25519 or ECDSA P-256`,
  );
}

export function pemKeyId(key: KeyObject): string {
  return "sha256:" + createHash("sha256").update(spkiDer(key)).digest("hex");
}

/**
 * The public-key hint of a Sigstore bundle's verification material: base64 of the
 * SHA-256 of the key's SPKI DER, as cosign (`verify_bundle.go`) and sigstore-go
 * (`sign/keys.go`) write it. sigstore-js looks trusted keys up by it.
 */
export function sigstoreKeyHint(key: PublicKey): string {
  let hint = hints.get(key);
  if (hint === undefined) {
    hint = createHash("sha256").update(spkiDer(key.key)).digest("base64");
    hints.set(key, hint);
  }
  return hint;
}

const hints = new WeakMap<PublicKey, string>();

export function verifySignature(key: PublicKey, data: Uint8Array, signature: Uint8Array): boolean {
  try {
    // Ed25519 takes no digest; ECDSA signatures are DER, over sha256, as Sigstore uses.
    return cryptoVerify(key.algorithm === "ed25519" ? null : "sha256", data, key.key, signature);
  } catch {
    return false;
  }
}

/** verifySignature on libuv's thread pool: many of them run on all cores. */
export function verifySignatureAsync(
  key: PublicKey,
  data: Uint8Array,
  signature: Uint8Array,
): Promise<boolean> {
  return new Promise((resolve) => {
    try {
      cryptoVerify(
        key.algorithm === "ed25519" ? null : "sha256",
        data,
        key.key,
        signature,
        (err, ok) => resolve(err ? false : ok),
      );
    } catch {
      resolve(false);
    }
  });
}

function makeSigner(privateKey: KeyObject, publicKey: PublicKey): Signer {
  const digest = publicKey.algorithm === "ed25519" ? null : "sha256";
  return {
    publicKey,
    sign: (data) => cryptoSign(digest, data, privateKey),
    signAsync: (data) =>
      new Promise((resolve, reject) =>
        cryptoSign(digest, data, privateKey, (err, sig) => (err ? reject(err) : resolve(sig))),
      ),
  };
}

// --- Nix keys: `name:base64`, libutil/signature/local-keys.cc ------------------

const NIX_KEY = /^([^:\s]+):([A-Za-z0-9+/]+={0,2})$/;

function splitNixKey(text: string, what: string): { name: string; bytes: Buffer } {
  const m = NIX_KEY.exec(text.trim());
  if (!m) throw new SignError("MALFORMED_KEY", `${what} is not a Nix key of the form name:base64`);
  return { name: m[1] as string, bytes: Buffer.from(m[2] as string, "base64") };
}

export function parseNixPublicKey(text: string): PublicKey {
  const { name, bytes } = splitNixKey(text, "public key");
  if (bytes.length !== 32) {
    throw new SignError("MALFORMED_KEY", `Nix public key '${name}' is not 32 bytes of Ed25519 key`);
  }
  const key = createPublicKey({
    key: Buffer.concat([ED25519_SPKI_PREFIX, bytes]),
    format: "der",
    type: "spki",
  });
  return { keyid: name, algorithm: "ed25519", key };
}

/** A secret key as `nix-store --generate-binary-cache-key` writes it (64 bytes: seed, public). */
export function parseNixSecretKey(text: string): Signer {
  const { name, bytes } = splitNixKey(text, "secret key");
  if (bytes.length !== 64) {
    throw new SignError("MALFORMED_KEY", `Nix secret key '${name}' is not 64 bytes of Ed25519 key`);
  }
  const privateKey = createPrivateKey({
    key: Buffer.concat([ED25519_PKCS8_PREFIX, bytes.subarray(0, 32)]),
    format: "der",
    type: "pkcs8",
  });
  const key = createPublicKey(privateKey);
  const derived = spkiDer(key).subarray(ED25519_SPKI_PREFIX.length);
  if (!derived.equals(bytes.subarray(32))) {
    throw new SignError(
      "KEY_MISMATCH",
      `Nix secret key '${name}' has a public half that does not match`,
    );
  }
  return makeSigner(privateKey, { keyid: name, algorithm: "ed25519", key });
}

export function nixPublicKeyText(key: PublicKey): string {
  if (key.algorithm !== "ed25519") {
    throw new SignError("UNSUPPORTED_KEY", "only Ed25519 keys have a Nix form");
  }
  return `${key.keyid}:${spkiDer(key.key).subarray(ED25519_SPKI_PREFIX.length).toString("base64")}`;
}

/**
 * A key's identity, unique where its keyid may not be (Nix key names are chosen
 * freely): the Nix public key `name:base64` for Nix keys, the SPKI digest for PEM keys.
 */
export function keyIdentity(key: PublicKey): string {
  if (key.identity !== undefined) return key.identity;
  let id = identities.get(key);
  if (id === undefined) {
    id =
      key.algorithm === "ed25519" && !key.keyid.startsWith("sha256:")
        ? nixPublicKeyText(key)
        : key.keyid;
    identities.set(key, id);
  }
  return id;
}

// Exporting a key costs ~0.2 ms; policies compare the same keys thousands of times.
const identities = new WeakMap<PublicKey, string>();

// --- PEM keys ---------------------------------------------------------------

export function parsePemPublicKey(text: string): PublicKey {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: text, format: "pem" });
  } catch (cause) {
    throw new SignError("MALFORMED_KEY", "public key is not a valid PEM SubjectPublicKeyInfo", {
      cause,
    });
  }
  return { keyid: pemKeyId(key), algorithm: algorithmOf(key), key };
}

export function parsePemPrivateKey(text: string): Signer {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: text, format: "pem" });
  } catch (cause) {
    // Never include the text: it is a secret.
    throw new SignError("MALFORMED_KEY", "private key is not a valid unencrypted PEM PKCS#8 key", {
      cause: (cause as Error).name,
    });
  }
  const key = createPublicKey(privateKey);
  return makeSigner(privateKey, { keyid: pemKeyId(key), algorithm: algorithmOf(key), key });
}

// --- any form ---------------------------------------------------------------

export function parsePublicKey(text: string): PublicKey {
  return text.includes("-----BEGIN") ? parsePemPublicKey(text) : parseNixPublicKey(text);
}

export function parseSecretKey(text: string): Signer {
  return text.includes("-----BEGIN") ? parsePemPrivateKey(text) : parseNixSecretKey(text);
}

export type KeyFormat = "nix" | "pem-ed25519" | "pem-p256";

/** A new key pair as text: the secret and the public key, in the chosen format. */
export function generateKeyPair(
  format: KeyFormat,
  name: string,
): { secret: string; public: string } {
  if (format === "nix") {
    if (!/^[^:\s]+$/.test(name)) {
      throw new SignError("MALFORMED_KEY", `key name '${name}' must not contain ':' or spaces`);
    }
    const { privateKey, publicKey } = generateKeyPairSync("ed25519");
    const seed = privateKey
      .export({ format: "der", type: "pkcs8" })
      .subarray(ED25519_PKCS8_PREFIX.length);
    const pub = spkiDer(publicKey).subarray(ED25519_SPKI_PREFIX.length);
    return {
      secret: `${name}:${Buffer.concat([seed, pub]).toString("base64")}`,
      public: `${name}:${pub.toString("base64")}`,
    };
  }
  const pair =
    format === "pem-ed25519"
      ? generateKeyPairSync("ed25519")
      : generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  return {
    secret: pair.privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
    public: pair.publicKey.export({ format: "pem", type: "spki" }).toString(),
  };
}
