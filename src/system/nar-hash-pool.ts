// NAR hashes of many store paths on all cores: worker threads, the largest paths
// first, small ones sent in batches. Few or tiny paths are hashed here directly.
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { NixError, type NixErrorCode } from "../nix/index.js";
import { hashNar, type NarDigest } from "./nar-dump.js";

export interface PathToHash {
  readonly path: string;
  /** The NAR size Nix records, to schedule the largest first. */
  readonly narSize: number;
}

type Result =
  | { path: string; sha256: string; size: number }
  | {
      path: string;
      error: { code: NixErrorCode; message: string };
    };

/** Below this much work, starting threads costs more than it saves. */
const IN_PROCESS_BYTES = 8 << 20;
const IN_PROCESS_PATHS = 64;

/**
 * The NAR sha256 of each path, computed from disk. A path that cannot be read
 * throws its NixError, as hashNar does.
 */
export async function hashNars(
  paths: readonly PathToHash[],
  threads = Math.min(availableParallelism(), 8),
): Promise<Map<string, NarDigest>> {
  const total = paths.reduce((a, p) => a + p.narSize, 0);
  if (threads < 2 || (paths.length < IN_PROCESS_PATHS && total < IN_PROCESS_BYTES)) {
    return new Map(paths.map((p) => [p.path, hashNar(p.path)]));
  }
  const queue = [...paths].sort((a, b) => b.narSize - a.narSize);
  // Batches of about equal work: one large path alone, small ones together.
  const target = Math.max(1 << 20, Math.ceil(total / (threads * 16)));
  const batches: string[][] = [];
  let batch: string[] = [];
  let size = 0;
  for (const p of queue) {
    batch.push(p.path);
    size += p.narSize;
    if (size >= target || batch.length >= 256) {
      batches.push(batch);
      batch = [];
      size = 0;
    }
  }
  if (batch.length > 0) batches.push(batch);
  const out = new Map<string, NarDigest>();
  let failure: NixError | undefined;
  const workers = Array.from(
    { length: Math.min(threads, batches.length) },
    () => new Worker(new URL("./nar-hash-worker.js", import.meta.url), { execArgv: [] }),
  );
  try {
    let next = 0;
    await Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve, reject) => {
            const send = () => {
              if (next >= batches.length || failure) {
                resolve();
                return;
              }
              w.postMessage({ id: next, paths: batches[next++] });
            };
            w.on("message", (m: { results: Result[] }) => {
              for (const r of m.results) {
                if ("error" in r) failure ??= new NixError(r.error.code, r.error.message);
                else out.set(r.path, { sha256: r.sha256, size: r.size });
              }
              send();
            });
            w.on("error", reject);
            send();
          }),
      ),
    );
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  if (failure) throw failure;
  return out;
}
