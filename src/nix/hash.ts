import { decodeNixBase32, nixBase32Length } from "./base32.js";
import { NixError } from "./error.js";

const SIZES: Record<string, number> = { md5: 16, sha1: 20, sha256: 32, sha512: 64 };

export type HashAlgorithm = "md5" | "sha1" | "sha256" | "sha512";

export interface Hash {
  readonly algorithm: HashAlgorithm;
  readonly hex: string;
}

/**
 * Parse a hash in any form Nix prints: `sha256:<base16|nix-base32|base64>`,
 * SRI `sha256-<base64>`, or a bare digest when `algorithm` is given.
 */
export function parseNixHash(text: string, algorithm?: HashAlgorithm): Hash {
  let algo: string | undefined = algorithm;
  let rest = text;
  const sri = /^(md5|sha1|sha256|sha512)-(.+)$/.exec(text);
  const colon = /^(md5|sha1|sha256|sha512):(.+)$/.exec(text);
  if (sri) {
    algo = sri[1];
    const bytes = Buffer.from(sri[2] as string, "base64");
    if (bytes.length !== SIZES[algo as string]) throw bad(text);
    return { algorithm: algo as HashAlgorithm, hex: bytes.toString("hex") };
  }
  if (colon) {
    algo = colon[1];
    rest = colon[2] as string;
  }
  if (algo === undefined || !(algo in SIZES)) throw bad(text);
  const size = SIZES[algo] as number;
  if (rest.length === size * 2 && /^[0-9a-f]+$/.test(rest)) {
    return { algorithm: algo as HashAlgorithm, hex: rest };
  }
  if (rest.length === nixBase32Length(size)) {
    try {
      return { algorithm: algo as HashAlgorithm, hex: decodeNixBase32(rest, size).toString("hex") };
    } catch (cause) {
      throw new NixError("INVALID_HASH", `invalid hash '${text}'`, { cause });
    }
  }
  const b64 = Buffer.from(rest, "base64");
  if (b64.length === size && /^[A-Za-z0-9+/]+=*$/.test(rest)) {
    return { algorithm: algo as HashAlgorithm, hex: b64.toString("hex") };
  }
  throw bad(text);
}

function bad(text: string): NixError {
  return new NixError("INVALID_HASH", `invalid hash '${text}'`);
}
