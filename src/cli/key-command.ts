import { readFile, writeFile } from "node:fs/promises";
import {
  isPkcs11Uri,
  nixPublicKeyText,
  parsePublicKey,
  sigstoreKeyHint,
  SignError,
  type PublicKey,
} from "../sign/index.js";
import { loadPublicKeys, loadSigner } from "../system/key-files.js";
import type { Command } from "./command.js";
import { CliError, EXIT } from "./errors.js";
import { printJson } from "./args.js";

/** A Nix secret key is name:base64 of 64 bytes; a PEM secret says PRIVATE KEY. */
function looksSecret(text: string): boolean {
  if (text.includes("PRIVATE KEY-----")) return true;
  const m = /^[^:\s]+:([A-Za-z0-9+/]+={0,2})\s*$/.exec(text);
  return m !== null && Buffer.from(m[1] as string, "base64").length === 64;
}

/** The one public key named by `arg`: a key file (public or secret), a Nix key `name:base64`, or a PKCS#11 URI. */
async function publicKeyOf(arg: string): Promise<PublicKey> {
  if (/^[^:/\s]+:[A-Za-z0-9+/]{43}=$/.test(arg)) return parsePublicKey(arg);
  if (isPkcs11Uri(arg)) return (await loadSigner(arg)).publicKey;
  let text: string;
  try {
    text = await readFile(arg, "utf8");
  } catch (cause) {
    throw new SignError(
      "KEY_FILE_UNREADABLE",
      `cannot read key ${arg}: ${(cause as NodeJS.ErrnoException).code ?? String(cause)}`,
    );
  }
  if (looksSecret(text)) return (await loadSigner(arg)).publicKey;
  const keys = await loadPublicKeys(arg);
  const [key, ...more] = keys;
  if (key === undefined || more.length > 0) {
    throw new SignError(
      "MALFORMED_KEY",
      `${arg} holds ${keys.length} keys; export takes one (a PEM file holds one key)`,
    );
  }
  return key;
}

const FORMATS = ["pem", "nix"] as const;

export const keyCommand: Command = {
  usage: "Usage: provenix key export [KEY] [--format pem|nix] [--out FILE]",
  help: `Prints the public half of a key in another form, so that other verifiers can
check what provenix signed: cosign, sigstore-go and sigstore-js take a PEM
SubjectPublicKeyInfo (cosign verify-blob-attestation --key key.pem ...), Nix takes
name:base64 (trusted-public-keys). A Nix ed25519 key and its PEM form are the same
key: bundles signed with the Nix secret verify with the PEM public key.

KEY is a public key file, a secret key file (only its public half is read; the
file must not be readable by others), or a Nix public key name:base64; by default
the signing key from the config (${"$XDG_CONFIG_HOME"}/provenix/signing.key).

Options:
  --format FORMAT   pem (default) or nix (Ed25519 keys only; the name is
                    provenix's key id: the Nix name, or sha256:<hex> for PEM keys)
  --out FILE        write it to FILE instead of standard output
  --json            print the key id, Sigstore hint, algorithm and both forms`,
  options: {
    format: { type: "string" },
    out: { type: "string" },
  },
  async run(ctx, inv) {
    const [action, arg, ...extra] = inv.positionals;
    if (action !== "export") {
      throw new CliError(
        "USAGE",
        action === undefined ? "missing action: export" : `unknown action '${action}': use export`,
      );
    }
    if (extra.length > 0) throw new CliError("USAGE", "key export takes one key");
    const format = (inv.values.format as string | undefined) ?? "pem";
    if (!(FORMATS as readonly string[]).includes(format)) {
      throw new CliError("USAGE", `unknown format '${format}': use pem or nix`);
    }
    const key = await publicKeyOf(arg ?? ctx.config.key);
    const pem = key.key.export({ format: "pem", type: "spki" }).toString();
    const nix = key.algorithm === "ed25519" ? nixPublicKeyText(key) : undefined;
    if (format === "nix" && nix === undefined) {
      throw new SignError("UNSUPPORTED_KEY", "only Ed25519 keys have a Nix form");
    }
    const text = format === "pem" ? pem : `${nix}\n`;
    const out = inv.values.out as string | undefined;
    if (out !== undefined) {
      try {
        await writeFile(out, text, { mode: 0o644 });
      } catch (cause) {
        throw new CliError(
          "USAGE",
          `cannot write ${out}: ${(cause as NodeJS.ErrnoException).code ?? String(cause)}`,
        );
      }
    }
    if (inv.json) {
      printJson(inv, {
        keyid: key.keyid,
        sigstoreHint: sigstoreKeyHint(key),
        algorithm: key.algorithm,
        pem,
        ...(nix !== undefined ? { nix } : {}),
        ...(out !== undefined ? { written: out } : {}),
      });
    } else if (out === undefined) inv.io.out(text);
    return EXIT.OK;
  },
};
