import { NixError } from "./error.js";

// Nix's own base-32 alphabet (no e, o, u, t) and bit order, from libutil/hash.cc
// (printHash32 / parseHash32): the last character holds the lowest bits.
export const NIX_BASE32_ALPHABET = "0123456789abcdfghijklmnpqrsvwxyz";

const DIGIT = new Map<string, number>([...NIX_BASE32_ALPHABET].map((c, i) => [c, i]));

export function nixBase32Length(byteLength: number): number {
  return Math.floor((byteLength * 8 - 1) / 5) + 1;
}

export function encodeNixBase32(bytes: Uint8Array): string {
  const len = nixBase32Length(bytes.length);
  let out = "";
  for (let n = len - 1; n >= 0; n--) {
    const b = n * 5;
    const i = b >> 3;
    const j = b & 7;
    const lo = (bytes[i] ?? 0) >> j;
    const hi = i + 1 < bytes.length ? (bytes[i + 1] ?? 0) << (8 - j) : 0;
    out += NIX_BASE32_ALPHABET[(lo | hi) & 0x1f];
  }
  return out;
}

export function decodeNixBase32(text: string, byteLength: number): Buffer {
  if (text.length !== nixBase32Length(byteLength)) {
    throw new NixError(
      "INVALID_BASE32",
      `nix-base32 string of length ${text.length} cannot hold ${byteLength} bytes`,
    );
  }
  const out = Buffer.alloc(byteLength);
  for (let n = 0; n < text.length; n++) {
    const ch = text[text.length - n - 1] as string;
    const digit = DIGIT.get(ch);
    if (digit === undefined) {
      throw new NixError("INVALID_BASE32", `invalid nix-base32 character '${ch}'`);
    }
    const b = n * 5;
    const i = b >> 3;
    const j = b & 7;
    out[i] = (out[i] as number) | ((digit << j) & 0xff);
    const carry = digit >> (8 - j);
    if (i + 1 < byteLength) {
      out[i + 1] = (out[i + 1] as number) | carry;
    } else if (carry !== 0) {
      throw new NixError(
        "INVALID_BASE32",
        `nix-base32 string '${text}' overflows ${byteLength} bytes`,
      );
    }
  }
  return out;
}
