import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { NAR, narLength, narPadding, narString, NixError } from "../nix/index.js";

export type NarSink = (chunk: Uint8Array) => void;

const CHUNK = 1 << 20;

/**
 * Serialise `root` as a NAR (libutil/archive.cc dumpPath), feeding the bytes to
 * `sink`. Synchronous on purpose: it is the fastest way through many small files.
 */
export function dumpNar(root: string, sink: NarSink): void {
  // One read buffer for every call: a new megabyte per path made a closure of
  // small paths spend most of its time collecting garbage. A sink that keeps a
  // chunk copies it (chunks are only valid until the sink returns).
  reading ??= Buffer.allocUnsafe(CHUNK);
  sink(NAR.magic);
  dumpNode(Buffer.from(root), sink, reading);
}

let reading: Buffer | undefined;

function dumpNode(p: Buffer, sink: NarSink, buffer: Buffer): void {
  const st = fs.lstatSync(p);
  sink(NAR.open);
  if (st.isFile()) {
    sink(NAR.regular);
    if (st.mode & 0o100) sink(NAR.executable);
    sink(NAR.contents);
    sink(narLength(st.size));
    const fd = fs.openSync(p, "r");
    try {
      let left = st.size;
      while (left > 0) {
        const n = fs.readSync(fd, buffer, 0, Math.min(CHUNK, left), null);
        if (n === 0)
          throw new NixError("NAR_UNSUPPORTED_FILE", `${p.toString()} shrank while being read`);
        sink(buffer.subarray(0, n));
        left -= n;
      }
    } finally {
      fs.closeSync(fd);
    }
    sink(narPadding(st.size));
  } else if (st.isSymbolicLink()) {
    sink(NAR.symlink);
    sink(narString(fs.readlinkSync(p, { encoding: "buffer" })));
  } else if (st.isDirectory()) {
    sink(NAR.directory);
    // NAR entries are sorted by name as raw bytes (std::map<std::string> in Nix).
    const names = fs.readdirSync(p, { encoding: "buffer" }).sort((a, b) => Buffer.compare(a, b));
    for (const name of names) {
      sink(NAR.entryName);
      sink(narString(name));
      sink(NAR.entryNode);
      dumpNode(Buffer.concat([p, Buffer.from(path.sep), name]), sink, buffer);
      sink(NAR.close);
    }
  } else {
    throw new NixError(
      "NAR_UNSUPPORTED_FILE",
      `${p.toString()} is neither a regular file, a symlink nor a directory`,
    );
  }
  sink(NAR.close);
}

export interface NarDigest {
  /** Lower-case hex sha256 of the NAR. */
  readonly sha256: string;
  readonly size: number;
}

/** The sha256 and size of the NAR serialisation of `root`, streamed. */
export function hashNar(root: string): NarDigest {
  const hash = createHash("sha256");
  let size = 0;
  try {
    dumpNar(root, (chunk) => {
      hash.update(chunk);
      size += chunk.length;
    });
  } catch (cause) {
    if (cause instanceof NixError) throw cause;
    const code = (cause as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new NixError("NOT_VALID", `${root} does not exist`, { cause });
    throw new NixError("NAR_UNSUPPORTED_FILE", `cannot read ${root}: ${String(code ?? cause)}`, {
      cause,
    });
  }
  return { sha256: hash.digest("hex"), size };
}
