// RFC 7512 PKCS#11 URIs: which token and key object to sign with, and how to reach
// them (module path, PIN). Pure: parsing only; src/system/pkcs11.ts talks to the module.
import { SignError } from "./error.js";

export interface Pkcs11Uri {
  /** Path attributes (token, object, id, serial, manufacturer, model, slot-id, ...), decoded. */
  readonly path: Readonly<Record<string, string>>;
  /** The key's CKA_ID, as bytes (the `id` attribute is percent-encoded binary). */
  readonly id?: Buffer;
  readonly modulePath?: string;
  /** The PIN given in the URI itself (pin-value): allowed, but a file is better. */
  readonly pinValue?: string;
  /** pin-source: a file the PIN is read from (file:/path or /path). */
  readonly pinSource?: string;
}

const PATH_ATTRIBUTES = new Set([
  "token",
  "object",
  "id",
  "serial",
  "manufacturer",
  "model",
  "library-manufacturer",
  "library-description",
  "library-version",
  "slot-id",
  "slot-description",
  "slot-manufacturer",
  "type",
]);

function decode(value: string, uri: string): Buffer {
  if (/%(?![0-9A-Fa-f]{2})/.test(value)) {
    throw new SignError(
      "MALFORMED_KEY",
      `bad percent-encoding in PKCS#11 URI ${redactPkcs11Uri(uri)}`,
    );
  }
  const bytes: number[] = [];
  for (let i = 0; i < value.length; i++) {
    if (value[i] === "%") {
      bytes.push(parseInt(value.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(...Buffer.from(value[i] ?? "", "utf8"));
  }
  return Buffer.from(bytes);
}

export const isPkcs11Uri = (s: string): boolean => s.startsWith("pkcs11:");

/** The URI without its PIN, for messages. */
export function redactPkcs11Uri(uri: string): string {
  return uri.replace(/([?&]pin-value=)[^&]*/g, "$1<redacted>");
}

export function parsePkcs11Uri(uri: string): Pkcs11Uri {
  if (!isPkcs11Uri(uri)) {
    throw new SignError("MALFORMED_KEY", "a PKCS#11 URI starts with 'pkcs11:'");
  }
  const body = uri.slice("pkcs11:".length);
  const q = body.indexOf("?");
  const pathPart = q < 0 ? body : body.slice(0, q);
  const queryPart = q < 0 ? "" : body.slice(q + 1);
  const path: Record<string, string> = {};
  let id: Buffer | undefined;
  for (const attr of pathPart.split(";").filter((a) => a !== "")) {
    const eq = attr.indexOf("=");
    const name = eq < 0 ? attr : attr.slice(0, eq);
    if (eq < 0 || !PATH_ATTRIBUTES.has(name) || name in path) {
      throw new SignError(
        "MALFORMED_KEY",
        `PKCS#11 URI ${redactPkcs11Uri(uri)}: ${eq < 0 ? `'${attr}' is not name=value` : name in path ? `'${name}' given twice` : `unknown attribute '${name}'`}`,
      );
    }
    const raw = decode(attr.slice(eq + 1), uri);
    if (name === "id") id = raw;
    path[name] = raw.toString("utf8");
  }
  const query: Record<string, string> = {};
  for (const attr of queryPart.split("&").filter((a) => a !== "")) {
    const eq = attr.indexOf("=");
    if (eq < 0) {
      throw new SignError(
        "MALFORMED_KEY",
        `PKCS#11 URI ${redactPkcs11Uri(uri)}: bad query attribute`,
      );
    }
    query[attr.slice(0, eq)] = decode(attr.slice(eq + 1), uri).toString("utf8");
  }
  if (path.type !== undefined && path.type !== "private") {
    throw new SignError(
      "MALFORMED_KEY",
      `PKCS#11 URI ${redactPkcs11Uri(uri)}: a signing key has type=private, not '${path.type}'`,
    );
  }
  if (path.object === undefined && id === undefined) {
    throw new SignError(
      "MALFORMED_KEY",
      `PKCS#11 URI ${redactPkcs11Uri(uri)} names no key: give object=<label> or id=<%xx bytes>`,
    );
  }
  return {
    path,
    ...(id ? { id } : {}),
    ...(query["module-path"] !== undefined ? { modulePath: query["module-path"] } : {}),
    ...(query["pin-value"] !== undefined ? { pinValue: query["pin-value"] } : {}),
    ...(query["pin-source"] !== undefined ? { pinSource: query["pin-source"] } : {}),
  };
}
