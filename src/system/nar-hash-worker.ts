// A worker of the NAR hashing pool (nar-hash-pool.ts): hashes the paths it is sent.
import { parentPort } from "node:worker_threads";
import { NixError } from "../nix/index.js";
import { hashNar } from "./nar-dump.js";

parentPort?.on("message", (m: { id: number; paths: string[] }) => {
  const results = m.paths.map((p) => {
    try {
      return { path: p, ...hashNar(p) };
    } catch (e) {
      const code = e instanceof NixError ? e.code : "NAR_UNSUPPORTED_FILE";
      return { path: p, error: { code, message: (e as Error).message } };
    }
  });
  parentPort?.postMessage({ id: m.id, results });
});
