import { constants } from "node:fs";
import { open, readFile, stat } from "node:fs/promises";
import { dirname } from "node:path";
import { makeDirs } from "./make-dirs.js";
import {
  isPkcs11Uri,
  parsePublicKey,
  parseSecretKey,
  SignError,
  type PublicKey,
  type Signer,
} from "../sign/index.js";

/** Load a signing key, refusing files that group or others can read. Errors never quote the key. */
export async function loadSigner(path: string): Promise<Signer> {
  if (isPkcs11Uri(path)) {
    // The PKCS#11 binding (a native addon) loads only for a pkcs11: key.
    const { openPkcs11Signer } = await import("./pkcs11.js");
    return openPkcs11Signer(path, {
      ...(process.env.PROVENIX_PKCS11_MODULE
        ? { modulePath: process.env.PROVENIX_PKCS11_MODULE }
        : {}),
      ...(process.env.PROVENIX_PKCS11_PIN !== undefined
        ? { pin: process.env.PROVENIX_PKCS11_PIN }
        : {}),
    });
  }
  let mode: number;
  try {
    mode = (await stat(path)).mode;
  } catch (cause) {
    throw new SignError("KEY_FILE_UNREADABLE", `cannot read signing key ${path}: ${code(cause)}`, {
      cause,
    });
  }
  if ((mode & 0o077) !== 0) {
    throw new SignError(
      "KEY_FILE_INSECURE",
      `signing key ${path} is readable by group or others (mode ${(mode & 0o777).toString(8)}); run: chmod 600 ${path}`,
    );
  }
  const text = await readText(path, "signing key");
  try {
    return parseSecretKey(text);
  } catch (e) {
    if (e instanceof SignError) throw new SignError(e.code, `${path}: ${e.message}`);
    throw e;
  }
}

/** Public keys from a file: one Nix key (`name:base64`) per line, or one PEM key. */
export async function loadPublicKeys(path: string): Promise<PublicKey[]> {
  const text = await readText(path, "public key");
  try {
    if (text.includes("-----BEGIN")) return [parsePublicKey(text)];
    return parsePublicKeyList(text);
  } catch (e) {
    if (e instanceof SignError) throw new SignError(e.code, `${path}: ${e.message}`);
    throw e;
  }
}

/** Nix keys separated by whitespace, as in `trusted-public-keys`. */
export function parsePublicKeyList(text: string): PublicKey[] {
  return text
    .split(/\s+/)
    .filter((t) => t !== "" && !t.startsWith("#"))
    .map((t) => parsePublicKey(t));
}

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (cause) {
    throw new SignError("KEY_FILE_UNREADABLE", `cannot read ${what} ${path}: ${code(cause)}`, {
      cause,
    });
  }
}

function code(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? String(e);
}

/**
 * Write a new key pair, making the secret's directory (0700) if need be; the secret
 * is created 0600 and never overwrites an existing file.
 */
export async function writeKeyPair(
  secretPath: string,
  publicPath: string,
  pair: { secret: string; public: string },
): Promise<void> {
  try {
    makeDirs(dirname(secretPath), 0o700);
  } catch (cause) {
    throw new SignError(
      "KEY_FILE_UNREADABLE",
      `cannot create ${dirname(secretPath)}: ${code(cause)}`,
      {
        cause,
      },
    );
  }
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL;
  for (const [path, text, mode] of [
    [secretPath, pair.secret, 0o600],
    [publicPath, pair.public, 0o644],
  ] as const) {
    let fh;
    try {
      fh = await open(path, flags, mode);
    } catch (cause) {
      const why = code(cause) === "EEXIST" ? "already exists" : code(cause);
      throw new SignError("KEY_FILE_UNREADABLE", `cannot create ${path}: ${why}`, { cause });
    }
    try {
      await fh.writeFile(text.endsWith("\n") ? text : text + "\n");
    } finally {
      await fh.close();
    }
  }
}
