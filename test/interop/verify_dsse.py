#!/usr/bin/python3
"""Independent DSSE check: PAE written here from the DSSE spec (protocol.md), the
signature verified by securesystemslib (Debian python3-securesystemslib).
Reads a Sigstore bundle on stdin; argv: keytype (ed25519 | ecdsa) and the public
key (hex for ed25519, PEM file path for ecdsa). Exit 0 when it verifies, 1 when not."""
import base64
import json
import sys

from securesystemslib.exceptions import UnverifiedSignatureError
from securesystemslib.signer import Signature, SSlibKey


KEYID = "00"  # securesystemslib wants a hex keyid; DSSE keyids are hints, unused here


def pae(payload_type: bytes, payload: bytes) -> bytes:
    return b"DSSEv1 %d %s %d %s" % (len(payload_type), payload_type, len(payload), payload)


def main() -> int:
    keytype, public = sys.argv[1], sys.argv[2]
    bundle = json.load(sys.stdin)
    env = bundle["dsseEnvelope"]
    payload = base64.b64decode(env["payload"])
    [sig] = env["signatures"]
    if keytype == "ed25519":
        key = SSlibKey(KEYID, "ed25519", "ed25519", {"public": public})
    else:
        with open(public) as f:
            key = SSlibKey(KEYID, "ecdsa", "ecdsa-sha2-nistp256", {"public": f.read()})
    signature = Signature(KEYID, base64.b64decode(sig["sig"]).hex())
    try:
        key.verify_signature(signature, pae(env["payloadType"].encode(), payload))
    except UnverifiedSignatureError as e:
        # VerificationError (bad input to the verifier) is a subclass: that is not a "no".
        if type(e) is not UnverifiedSignatureError:
            print(f"cannot verify: {e!r} from {e.__cause__!r}", file=sys.stderr)
            return 2
        print("signature does not verify", file=sys.stderr)
        return 1
    return 0


sys.exit(main())
