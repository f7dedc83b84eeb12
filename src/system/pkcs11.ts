// Keys in hardware: a signer whose private key stays in a PKCS#11 token (a YubiKey
// or HSM, SoftHSM in the tests), named by an RFC 7512 URI. pkcs11js (PeculiarVentures'
// binding) loads the module; the secret never exists in a file or in this process.
import { createHash, createPublicKey, type KeyObject } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import pkcs11js from "pkcs11js";
import {
  parsePkcs11Uri,
  pemKeyId,
  redactPkcs11Uri,
  SignError,
  type PublicKey,
  type Signer,
} from "../sign/index.js";

// PKCS#11 3.0 values pkcs11js does not name.
const CKK_EC_EDWARDS = 0x40;
const CKM_EDDSA = 0x1057;

const P256_OID = Buffer.from("06082a8648ce3d030107", "hex");
const ED25519_OID = Buffer.from("06032b6570", "hex");
const ED25519_NAME = Buffer.concat([Buffer.from([0x13, 12]), Buffer.from("edwards25519")]);
const P256_SPKI_PREFIX = Buffer.from("3059301306072a8648ce3d020106082a8648ce3d030107034200", "hex");
const ED25519_SPKI_PREFIX = Buffer.from("302a300506032b6570032100", "hex");

/** CKR_* names as pkcs11js reports them, in words. */
function tokenError(e: unknown, uri: string): SignError {
  const m = (e as Error).message || String(e);
  const what = m.includes("CKR_PIN_INCORRECT")
    ? "the PIN is incorrect"
    : m.includes("CKR_PIN_LOCKED")
      ? "the PIN is locked"
      : m.includes("CKR_PIN_LEN_RANGE")
        ? "the PIN has the wrong length"
        : m.replace(/\s+/g, " ");
  return new SignError("KEY_FILE_UNREADABLE", `PKCS#11 key ${redactPkcs11Uri(uri)}: ${what}`);
}

/** The DER form of a raw r||s ECDSA signature (PKCS#11 returns it raw; Sigstore wants DER). */
export function ecdsaRawToDer(raw: Buffer): Buffer {
  const half = raw.length / 2;
  const int = (b: Buffer) => {
    let i = 0;
    while (i < b.length - 1 && b[i] === 0) i++;
    const v = b.subarray(i);
    return (v[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), v]) : v;
  };
  const r = int(raw.subarray(0, half));
  const s = int(raw.subarray(half));
  const body = Buffer.concat([Buffer.from([0x02, r.length]), r, Buffer.from([0x02, s.length]), s]);
  return Buffer.concat([Buffer.from([0x30, body.length]), body]);
}

/** CKA_EC_POINT is a DER OCTET STRING around the point; some tokens give the point bare. */
function unwrapPoint(point: Buffer, size: number): Buffer {
  if (point.length === size + 2 && point[0] === 0x04 && point[1] === size) return point.subarray(2);
  return point;
}

export interface Pkcs11Options {
  /** The module when the URI has no module-path (PROVENIX_PKCS11_MODULE). */
  readonly modulePath?: string;
  /** The PIN when the URI has neither pin-value nor pin-source (PROVENIX_PKCS11_PIN). */
  readonly pin?: string;
}

const sessions: { p11: pkcs11js.PKCS11; session: pkcs11js.Handle }[] = [];
process.once("exit", () => {
  for (const s of sessions) {
    try {
      s.p11.C_CloseSession(s.session);
      s.p11.C_Finalize();
    } catch {
      // the process is going away anyway
    }
  }
});

/** A signer for the private key the URI names, logged in for the life of the process. */
export function openPkcs11Signer(uri: string, o: Pkcs11Options = {}): Signer {
  const u = parsePkcs11Uri(uri);
  const modulePath = u.modulePath ?? o.modulePath;
  if (!modulePath) {
    throw new SignError(
      "MALFORMED_KEY",
      `PKCS#11 key ${redactPkcs11Uri(uri)}: no module: add ?module-path=... or set PROVENIX_PKCS11_MODULE`,
    );
  }
  let pin = u.pinValue ?? o.pin;
  if (u.pinSource !== undefined) {
    const file = u.pinSource.replace(/^file:(\/\/)?/, "");
    try {
      if ((statSync(file).mode & 0o077) !== 0) {
        throw new SignError(
          "KEY_FILE_INSECURE",
          `PIN file ${file} is readable by group or others; run: chmod 600 ${file}`,
        );
      }
      pin = readFileSync(file, "utf8").replace(/\r?\n$/, "");
    } catch (e) {
      if (e instanceof SignError) throw e;
      throw new SignError(
        "KEY_FILE_UNREADABLE",
        `PKCS#11 key ${redactPkcs11Uri(uri)}: cannot read pin-source ${file}: ${(e as NodeJS.ErrnoException).code ?? "unreadable"}`,
      );
    }
  }
  const p11 = new pkcs11js.PKCS11();
  try {
    p11.load(modulePath);
  } catch (e) {
    throw new SignError(
      "KEY_FILE_UNREADABLE",
      `PKCS#11 key ${redactPkcs11Uri(uri)}: cannot load module ${modulePath}: ${(e as Error).message}`,
    );
  }
  try {
    p11.C_Initialize();
    const slot = p11.C_GetSlotList(true).find((s) => {
      const info = p11.C_GetTokenInfo(s);
      const want = (k: string, v: string) =>
        u.path[k] === undefined || u.path[k] === v.replace(/[\s\0]+$/, "");
      return (
        want("token", info.label) &&
        want("serial", info.serialNumber) &&
        want("manufacturer", info.manufacturerID) &&
        want("model", info.model)
      );
    });
    if (slot === undefined) {
      throw new SignError(
        "KEY_FILE_UNREADABLE",
        `PKCS#11 key ${redactPkcs11Uri(uri)}: no token in ${modulePath} matches`,
      );
    }
    const session = p11.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION);
    sessions.push({ p11, session });
    if (pin !== undefined) p11.C_Login(session, pkcs11js.CKU_USER, pin);
    const find = (cls: number): pkcs11js.Handle[] => {
      const template: pkcs11js.Template = [{ type: pkcs11js.CKA_CLASS, value: cls }];
      if (u.path.object !== undefined)
        template.push({ type: pkcs11js.CKA_LABEL, value: u.path.object });
      if (u.id) template.push({ type: pkcs11js.CKA_ID, value: u.id });
      p11.C_FindObjectsInit(session, template);
      const found = p11.C_FindObjects(session, 2);
      p11.C_FindObjectsFinal(session);
      return found;
    };
    const privates = find(pkcs11js.CKO_PRIVATE_KEY);
    if (privates.length !== 1) {
      throw new SignError(
        "KEY_FILE_UNREADABLE",
        `PKCS#11 key ${redactPkcs11Uri(uri)}: ${privates.length === 0 ? `no private key matches${pin === undefined ? " (no PIN given: pin-source=file:... or PROVENIX_PKCS11_PIN)" : ""}` : "more than one private key matches"}`,
      );
    }
    const key = privates[0] as pkcs11js.Handle;
    const publicKey = readPublicKey(p11, session, find(pkcs11js.CKO_PUBLIC_KEY)[0], uri);
    const ed = publicKey.algorithm === "ed25519";
    return {
      publicKey,
      sign(data) {
        try {
          p11.C_SignInit(session, { mechanism: ed ? CKM_EDDSA : pkcs11js.CKM_ECDSA }, key);
          const input = ed ? Buffer.from(data) : createHash("sha256").update(data).digest();
          const sig = p11.C_Sign(session, input, Buffer.alloc(512));
          return ed ? Buffer.from(sig) : ecdsaRawToDer(Buffer.from(sig));
        } catch (e) {
          throw tokenError(e, uri);
        }
      },
    };
  } catch (e) {
    if (e instanceof SignError) throw e;
    throw tokenError(e, uri);
  }
}

function readPublicKey(
  p11: pkcs11js.PKCS11,
  session: pkcs11js.Handle,
  handle: pkcs11js.Handle | undefined,
  uri: string,
): PublicKey {
  if (handle === undefined) {
    throw new SignError(
      "KEY_FILE_UNREADABLE",
      `PKCS#11 key ${redactPkcs11Uri(uri)}: the token has no public key object beside the private key`,
    );
  }
  const [type, params, point] = p11.C_GetAttributeValue(session, handle, [
    { type: pkcs11js.CKA_KEY_TYPE },
    { type: pkcs11js.CKA_EC_PARAMS },
    { type: pkcs11js.CKA_EC_POINT },
  ]);
  const keyType = type?.value?.readUInt32LE(0);
  const p = params?.value;
  const q = point?.value;
  let der: Buffer;
  let algorithm: PublicKey["algorithm"];
  if (keyType === pkcs11js.CKK_EC && p?.equals(P256_OID) && q) {
    der = Buffer.concat([P256_SPKI_PREFIX, unwrapPoint(q, 65)]);
    algorithm = "ecdsa-p256";
  } else if (
    keyType === CKK_EC_EDWARDS &&
    (p?.equals(ED25519_OID) || p?.equals(ED25519_NAME)) &&
    q
  ) {
    der = Buffer.concat([ED25519_SPKI_PREFIX, unwrapPoint(q, 32)]);
    algorithm = "ed25519";
  } else {
    throw new SignError(
      "UNSUPPORTED_KEY",
      `PKCS#11 key ${redactPkcs11Uri(uri)}: only ECDSA P-256 and Ed25519 keys are supported`,
    );
  }
  const key: KeyObject = createPublicKey({ key: der, format: "der", type: "spki" });
  return { keyid: pemKeyId(key), algorithm, key };
}
