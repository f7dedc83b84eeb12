// DSSE v1.0: secure-systems-lab/dsse protocol.md. The PAE comes from sigstore-js's
// core package (the function its own verifier uses):
//   PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body
// Its own file, not the package's index, which loads the whole package (x509, asn1,
// RFC 3161: 22 modules) into every command. The version is pinned in package.json,
// and the package has no "exports" map: this path is part of what it publishes.
import { preAuthEncoding as pae } from "@sigstore/core/dist/dsse.js";

export const preAuthEncoding: (payloadType: string, payload: Buffer) => Buffer = pae;
