// NAR ("Nix ARchive") framing, from Eelco Dolstra's thesis, figure 5.2, and
// libutil/archive.cc: every string is its length as a 64-bit little-endian
// integer, its bytes, and zero padding to a multiple of 8.

const ZEROS = Buffer.alloc(8);

export function narPadding(length: number): Buffer {
  const rem = length % 8;
  return rem === 0 ? ZEROS.subarray(0, 0) : ZEROS.subarray(0, 8 - rem);
}

export function narLength(length: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(length));
  return b;
}

export function narString(s: string | Uint8Array): Buffer {
  const bytes = typeof s === "string" ? Buffer.from(s, "utf8") : Buffer.from(s);
  return Buffer.concat([narLength(bytes.length), bytes, narPadding(bytes.length)]);
}

function tokens(...words: string[]): Buffer {
  return Buffer.concat(words.map((w) => narString(w)));
}

/** Byte sequences that frame the nodes of a NAR. */
export const NAR = {
  magic: tokens("nix-archive-1"),
  open: tokens("("),
  close: tokens(")"),
  regular: tokens("type", "regular"),
  executable: tokens("executable", ""),
  contents: tokens("contents"),
  symlink: tokens("type", "symlink", "target"),
  directory: tokens("type", "directory"),
  entryName: tokens("entry", "(", "name"),
  entryNode: tokens("node"),
} as const;
