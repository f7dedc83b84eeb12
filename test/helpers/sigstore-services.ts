// Sigstore's services on 127.0.0.1 for a test: Fulcio (with a CT log), Rekor v1
// and a timestamp authority, from @sigstore/mock (the sigstore-js project's own test
// servers: real certificates, SCTs, SETs, inclusion proofs, checkpoints and RFC 3161
// timestamps), served by a real HTTP server; a trusted_root.json built from their
// keys; and OIDC identity tokens signed by a key the test holds.
import { createHash, generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import http from "node:http";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  fulcioHandler,
  initializeCA,
  initializeCTLog,
  initializeTLog,
  initializeTSA,
  rekorHandler,
  tsaHandler,
  type HandlerFn,
} from "@sigstore/mock";
import { tempDir } from "./nix.js";
import { freePort } from "./registry.js";

const keyPair = () => generateKeyPairSync("ec", { namedCurve: "P-256" });

export interface SigstoreServices {
  readonly url: string;
  /** trusted_root.json for these services. */
  readonly trustedRoot: string;
  /** Requests answered, by path. */
  readonly hits: Map<string, number>;
  /** Make the next `n` requests to a path fail with this status. */
  fail(path: string, status: number, n?: number): void;
}

/** The DER of a certificate the mock hands out as an ArrayBufferView. */
const der = (v: ArrayBufferView) => Buffer.from(v.buffer, v.byteOffset, v.byteLength);

export async function sigstoreServices(
  t: { after(fn: () => unknown): void },
  o: { tlogClock?: Date } = {},
): Promise<SigstoreServices> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const ctLog = await initializeCTLog(keyPair());
  const ca = await initializeCA(keyPair(), ctLog);
  const tlog = await initializeTLog(url, keyPair(), o.tlogClock);
  const tsa = await initializeTSA(keyPair());
  const handlers = new Map<string, HandlerFn>(
    [fulcioHandler(ca), rekorHandler(tlog), tsaHandler(tsa)].map((h) => [h.path, h.fn]),
  );
  const hits = new Map<string, number>();
  const failures = new Map<string, { status: number; n: number }>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const path = (req.url ?? "").replace(/\?.*$/, "");
      hits.set(path, (hits.get(path) ?? 0) + 1);
      const failure = failures.get(path);
      if (failure && failure.n > 0) {
        failure.n--;
        res.writeHead(failure.status, { "content-type": "text/plain" });
        res.end(`injected ${failure.status}`);
        return;
      }
      const fn = handlers.get(path);
      if (!fn || req.method !== "POST") {
        res.writeHead(404);
        res.end();
        return;
      }
      const body = Buffer.concat(chunks).toString("utf8");
      // @sigstore/core reads a GeneralizedTime's fraction only as three digits, but
      // the mock TSA writes DER's shortest form (.12 for 120 ms): one timestamp in ten
      // would not parse. The TSA is asked when the millisecond does not end in 0.
      if (path === "/api/v1/timestamp") while ([0, 9].includes(Date.now() % 10));
      fn(path === "/api/v1/log/entries" ? rekorCanonical(body) : body).then(
        (r) => {
          res.writeHead(r.statusCode, { "content-type": r.contentType ?? "application/json" });
          res.end(typeof r.response === "string" ? r.response : der(r.response));
        },
        (e: unknown) => {
          res.writeHead(500);
          res.end(String(e));
        },
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  t.after(() => server.close());

  const start = new Date(Date.now() - 3600_000).toISOString();
  const b64 = (b: Buffer) => b.toString("base64");
  const log = (publicKey: Buffer, logId: Buffer, baseUrl: string) => ({
    baseUrl,
    hashAlgorithm: "SHA2_256",
    publicKey: {
      rawBytes: b64(publicKey),
      keyDetails: "PKIX_ECDSA_P256_SHA_256",
      validFor: { start },
    },
    logId: { keyId: b64(logId) },
  });
  const root = {
    mediaType: "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
    tlogs: [log(tlog.publicKey, createHash("sha256").update(tlog.publicKey).digest(), url)],
    certificateAuthorities: [
      {
        subject: { organization: "sigstore.mock", commonName: "sigstore" },
        uri: url,
        certChain: { certificates: [{ rawBytes: b64(der(ca.rootCertificate)) }] },
        validFor: { start },
      },
    ],
    ctlogs: [log(ctLog.publicKey, der(ctLog.logID), url)],
    timestampAuthorities: [
      {
        subject: { organization: "sigstore.mock", commonName: "tsa" },
        uri: url,
        certChain: {
          certificates: [
            { rawBytes: b64(der(tsa.intCertificate)) },
            { rawBytes: b64(der(tsa.rootCertificate)) },
          ],
        },
        validFor: { start },
      },
    ],
  };
  const trustedRoot = join(tempDir("provenix-sigstore-"), "trusted_root.json");
  writeFileSync(trustedRoot, JSON.stringify(root, null, 2));
  return {
    url,
    trustedRoot,
    hits,
    fail(path, status, n = 1) {
      failures.set(path, { status, n });
    },
  };
}

/**
 * Rekor v1 keeps a dsse entry in canonical form, not as proposed (rekor
 * pkg/types/dsse/v0.0.1: the envelope's and payload's SHA-256 and the signatures
 * with their verifiers; the envelope itself is not stored). @sigstore/mock logs
 * what it is sent, so this turns a proposed dsse entry into what Rekor logs.
 */
function rekorCanonical(body: string): string {
  const e = JSON.parse(body) as {
    apiVersion: string;
    kind: string;
    spec: { proposedContent?: { envelope: string; verifiers: string[] } };
  };
  const proposed = e.spec.proposedContent;
  if (e.kind !== "dsse" || !proposed) return body;
  const envelope = JSON.parse(proposed.envelope) as {
    payload: string;
    signatures: { sig: string }[];
  };
  const hex = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");
  return JSON.stringify({
    apiVersion: e.apiVersion,
    kind: "dsse",
    spec: {
      envelopeHash: { algorithm: "sha256", value: hex(proposed.envelope) },
      payloadHash: { algorithm: "sha256", value: hex(Buffer.from(envelope.payload, "base64")) },
      signatures: envelope.signatures.map((s, i) => ({
        signature: s.sig,
        verifier: proposed.verifiers[i] ?? "",
      })),
    },
  });
}

export const TEST_ISSUER = "https://oidc.provenix.test";

/** An OIDC identity token (ES256 JWT) for `subject`, signed by a key the test holds. */
export function identityToken(
  subject: string,
  claims: Record<string, unknown> = {},
  key: KeyObject = keyPair().privateKey,
): string {
  const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const body = `${enc({ alg: "ES256", typ: "JWT", kid: "test" })}.${enc({
    iss: TEST_ISSUER,
    sub: subject,
    aud: "sigstore",
    iat: now,
    exp: now + 600,
    ...claims,
  })}`;
  const sig = sign("sha256", Buffer.from(body), { key, dsaEncoding: "ieee-p1363" });
  return `${body}.${sig.toString("base64url")}`;
}
