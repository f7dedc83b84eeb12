import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { spkiDer, type PublicKey } from "../../src/sign/index.js";
import { ROOT, tempDir } from "./nix.js";

/** True when Python's securesystemslib verifies the bundle's DSSE signature with `key`. */
export function securesystemslibVerifies(bundle: Uint8Array, key: PublicKey): boolean {
  let arg: string;
  if (key.algorithm === "ed25519") {
    arg = spkiDer(key.key).subarray(-32).toString("hex");
  } else {
    arg = join(tempDir(), "key.pem");
    writeFileSync(arg, key.key.export({ format: "pem", type: "spki" }));
  }
  const r = spawnSync(
    "/usr/bin/python3",
    [
      join(ROOT, "test", "interop", "verify_dsse.py"),
      key.algorithm === "ed25519" ? "ed25519" : "ecdsa",
      arg,
    ],
    {
      input: bundle,
      encoding: "utf8",
    },
  );
  if (r.status !== 0 && r.status !== 1) throw new Error(`verify_dsse.py failed: ${r.stderr}`);
  return r.status === 0;
}
