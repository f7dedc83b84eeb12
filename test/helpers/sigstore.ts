// The official sigstore-js verifier, given only a public key: an independent check
// of the bundles provenix writes.
import { createHash } from "node:crypto";
import { bundleFromJSON } from "@sigstore/bundle";
import { toSignedEntity, toTrustMaterial, Verifier } from "@sigstore/verify";
import { spkiDer, type PublicKey } from "../../src/sign/index.js";

export function sigstoreVerify(bundleBytes: Uint8Array, key: PublicKey): void {
  const trustedRoot = {
    mediaType: "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
    tlogs: [],
    certificateAuthorities: [],
    ctlogs: [],
    timestampAuthorities: [],
  };
  // sigstore-js finds the key by the bundle's hint; cosign and sigstore-go write the
  // SPKI's SHA-256 in base64 there, and so must we for their users' key selectors.
  const hint = createHash("sha256").update(spkiDer(key.key)).digest("base64");
  const keys = {
    [hint]: {
      rawBytes: spkiDer(key.key),
      keyDetails:
        key.algorithm === "ed25519" ? 7 /* PKIX_ED25519 */ : 5 /* PKIX_ECDSA_P256_SHA_256 */,
    },
  };
  const material = toTrustMaterial(trustedRoot, keys);
  const verifier = new Verifier(material, {
    tlogThreshold: 0,
    ctlogThreshold: 0,
    timestampThreshold: 0,
  });
  const bundle = bundleFromJSON(JSON.parse(Buffer.from(bundleBytes).toString("utf8")));
  verifier.verify(toSignedEntity(bundle));
}
