import assert from "node:assert/strict";
import { test } from "node:test";
import { IN_TOTO_PAYLOAD_TYPE } from "../../src/attest/index.js";
import {
  generateKeyPair,
  parsePublicKey,
  parseSecretKey,
  signBundle,
} from "../../src/sign/index.js";
import { securesystemslibVerifies } from "../helpers/securesystemslib.js";

for (const format of ["nix", "pem-ed25519", "pem-p256"] as const) {
  test(`${format}: Python securesystemslib verifies our DSSE signature, and refuses it tampered or with another key`, () => {
    const pair = generateKeyPair(format, "interop-1");
    const signer = parseSecretKey(pair.secret);
    const payload = Buffer.from(
      JSON.stringify({
        _type: "https://in-toto.io/Statement/v1",
        subject: [],
        predicateType: "x",
        note: "ünïcode",
      }),
    );
    const bundle = signBundle(payload, IN_TOTO_PAYLOAD_TYPE, signer);
    assert.equal(securesystemslibVerifies(bundle, parsePublicKey(pair.public)), true);

    const json = JSON.parse(bundle.toString()) as { dsseEnvelope: { payload: string } };
    json.dsseEnvelope.payload = Buffer.from(payload.toString().replace("x", "y")).toString(
      "base64",
    );
    assert.equal(
      securesystemslibVerifies(Buffer.from(JSON.stringify(json)), parsePublicKey(pair.public)),
      false,
    );
    const other = parsePublicKey(generateKeyPair(format, "other-1").public);
    assert.equal(securesystemslibVerifies(bundle, other), false);
  });
}
