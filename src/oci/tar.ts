import { OciError } from "./error.js";

// Tar headers (POSIX ustar, with GNU long names and pax `path` records), enough
// to find where each file's bytes are in an uncompressed archive without reading them.

export const BLOCK = 512;

export interface TarHeader {
  readonly name: string;
  readonly size: number;
  /** "0" regular file, "5" directory, "L" GNU long name, "x"/"g" pax headers, ... */
  readonly type: string;
}

function field(b: Buffer, start: number, length: number): string {
  const raw = b.subarray(start, start + length);
  const nul = raw.indexOf(0);
  return raw.subarray(0, nul < 0 ? raw.length : nul).toString("utf8");
}

function octal(b: Buffer, start: number, length: number, what: string): number {
  const raw = b.subarray(start, start + length);
  if ((raw[0] ?? 0) & 0x80) {
    // GNU base-256 for sizes of 8 GiB and more.
    let n = 0;
    for (let i = 1; i < raw.length; i++) n = n * 256 + (raw[i] ?? 0);
    return n;
  }
  const text = field(b, start, length).trim();
  if (!/^[0-7]*$/.test(text)) throw new OciError("MALFORMED_ARCHIVE", `${what}: bad tar header`);
  return text === "" ? 0 : parseInt(text, 8);
}

/** Parse one 512-byte header; undefined for an end-of-archive (all-zero) block. */
export function parseTarHeader(b: Buffer, what: string): TarHeader | undefined {
  if (b.length < BLOCK) throw new OciError("MALFORMED_ARCHIVE", `${what}: truncated tar archive`);
  if (b.every((x) => x === 0)) return undefined;
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : (b[i] ?? 0);
  if (sum !== octal(b, 148, 8, what)) {
    throw new OciError(
      "MALFORMED_ARCHIVE",
      `${what}: not a tar archive (header checksum mismatch)`,
    );
  }
  const name = field(b, 0, 100);
  const prefix = field(b, 257, 6) === "ustar" ? field(b, 345, 155) : "";
  return {
    name: prefix ? `${prefix}/${name}` : name,
    size: octal(b, 124, 12, what),
    type: String.fromCharCode(b[156] || 48),
  };
}

/** The `path` of a pax extended header's records, if it sets one. */
export function paxPath(data: Buffer): string | undefined {
  let i = 0;
  let path: string | undefined;
  while (i < data.length) {
    const space = data.indexOf(32, i);
    if (space < 0) break;
    const len = parseInt(data.subarray(i, space).toString("ascii"), 10);
    if (!Number.isSafeInteger(len) || len <= 0) break;
    const record = data.subarray(space + 1, i + len - 1).toString("utf8");
    const eq = record.indexOf("=");
    if (record.slice(0, eq) === "path") path = record.slice(eq + 1);
    i += len;
  }
  return path;
}

export const padded = (size: number) => Math.ceil(size / BLOCK) * BLOCK;
