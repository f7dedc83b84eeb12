import { createHash } from "node:crypto";

/** An OCI content digest: `sha256:<hex>` of the bytes. */
export function ociDigest(bytes: Uint8Array): string {
  return "sha256:" + createHash("sha256").update(bytes).digest("hex");
}
