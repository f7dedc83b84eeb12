// DSSE v1.0: secure-systems-lab/dsse protocol.md. The PAE comes from sigstore-js's
// core package (the function its own verifier uses):
//   PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body
import { dsse } from "@sigstore/core";

export const preAuthEncoding: (payloadType: string, payload: Buffer) => Buffer =
  dsse.preAuthEncoding;
