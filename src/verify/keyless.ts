// Keyless bundles: a Fulcio certificate instead of a key. sigstore-js's
// @sigstore/verify checks what Sigstore's client spec asks (the certificate chain to
// a Fulcio CA of the trusted root, valid at the trusted time of a verified Rekor
// entry or RFC 3161 timestamp; SCTs; inclusion proofs, checkpoints and SETs; the
// signature over the DSSE PAE, before anything reads the payload). This module adds
// who may sign: the certificate's identity against the caller's rules. Pure.
import type { KeyObject } from "node:crypto";
import type { Bundle } from "@sigstore/bundle";
import type * as SigstoreCore from "@sigstore/core";
import type { X509Certificate } from "@sigstore/core";
import { createRequire } from "node:module";
import type * as ProtobufSpecs from "@sigstore/protobuf-specs";
import type * as SigstoreVerify from "@sigstore/verify";
import type { TrustMaterial } from "@sigstore/verify";
import { SignError } from "../sign/index.js";

// @sigstore/verify, @sigstore/core and the protobuf specs (five dozen modules) load
// when a certificate bundle or a trusted root is first met, not for verification by key.
const require = createRequire(import.meta.url);
let verifyModule: typeof SigstoreVerify | undefined;
let coreModule: typeof SigstoreCore | undefined;
let specsModule: typeof ProtobufSpecs | undefined;
const sigstoreVerify = () =>
  (verifyModule ??= require("@sigstore/verify") as typeof SigstoreVerify);
const sigstoreCore = () => (coreModule ??= require("@sigstore/core") as typeof SigstoreCore);
const protobufSpecs = () =>
  (specsModule ??= require("@sigstore/protobuf-specs") as typeof ProtobufSpecs);

/** Fulcio's certificate extensions (fulcio docs/oid-info.md), by cosign's names. */
export const FULCIO_EXTENSIONS: Readonly<Record<string, string>> = {
  // Deprecated GitHub-specific ones (raw string values); cosign's --certificate-github-workflow-*.
  githubWorkflowTrigger: "1.3.6.1.4.1.57264.1.2",
  githubWorkflowSha: "1.3.6.1.4.1.57264.1.3",
  githubWorkflowName: "1.3.6.1.4.1.57264.1.4",
  githubWorkflowRepository: "1.3.6.1.4.1.57264.1.5",
  githubWorkflowRef: "1.3.6.1.4.1.57264.1.6",
  // DER UTF8String values.
  issuer: "1.3.6.1.4.1.57264.1.8",
  buildSignerURI: "1.3.6.1.4.1.57264.1.9",
  buildSignerDigest: "1.3.6.1.4.1.57264.1.10",
  runnerEnvironment: "1.3.6.1.4.1.57264.1.11",
  sourceRepositoryURI: "1.3.6.1.4.1.57264.1.12",
  sourceRepositoryDigest: "1.3.6.1.4.1.57264.1.13",
  sourceRepositoryRef: "1.3.6.1.4.1.57264.1.14",
  sourceRepositoryIdentifier: "1.3.6.1.4.1.57264.1.15",
  sourceRepositoryOwnerURI: "1.3.6.1.4.1.57264.1.16",
  sourceRepositoryOwnerIdentifier: "1.3.6.1.4.1.57264.1.17",
  buildConfigURI: "1.3.6.1.4.1.57264.1.18",
  buildConfigDigest: "1.3.6.1.4.1.57264.1.19",
  buildTrigger: "1.3.6.1.4.1.57264.1.20",
  runInvocationURI: "1.3.6.1.4.1.57264.1.21",
  sourceRepositoryVisibilityAtSigning: "1.3.6.1.4.1.57264.1.22",
};
const ISSUER_V1 = "1.3.6.1.4.1.57264.1.1";
const RAW_VALUED = new Set([
  "1.3.6.1.4.1.57264.1.1",
  ...["2", "3", "4", "5", "6"].map((n) => `1.3.6.1.4.1.57264.1.${n}`),
]);

export interface CertificateIdentity {
  /** The subject alternative name: an email, a URI (a CI workflow), ... */
  readonly subject: string;
  /** The OIDC issuer that vouched for it (extension 1.3.6.1.4.1.57264.1.8, or .1.1). */
  readonly issuer: string;
  /** Fulcio's other extensions present, by name. */
  readonly extensions: Readonly<Record<string, string>>;
}

/** The DER of a bundle's signing certificate (a certificate, or the first of a chain). */
export function leafCertificate(bundle: Bundle): Buffer<ArrayBuffer> | undefined {
  const material = bundle.verificationMaterial.content;
  const der =
    material?.$case === "certificate"
      ? material.certificate.rawBytes
      : material?.$case === "x509CertificateChain"
        ? material.x509CertificateChain.certificates[0]?.rawBytes
        : undefined;
  return der ? Buffer.from(der) : undefined;
}

/** Who a Fulcio certificate was issued to. */
export function certificateIdentity(cert: X509Certificate): CertificateIdentity {
  const value = (oid: string): string | undefined => {
    const ext = cert.extension(oid);
    if (!ext) return undefined;
    if (RAW_VALUED.has(oid)) return ext.value.toString("utf8");
    return ext.valueObj.subs[0]?.value.toString("utf8") ?? ext.value.toString("utf8");
  };
  const extensions: Record<string, string> = {};
  for (const [name, oid] of Object.entries(FULCIO_EXTENSIONS)) {
    const v = value(oid);
    if (v !== undefined && name !== "issuer") extensions[name] = v;
  }
  return {
    subject: cert.subjectAltName ?? "",
    issuer: value(FULCIO_EXTENSIONS.issuer ?? "") ?? value(ISSUER_V1) ?? "",
    extensions,
  };
}

/** Who may sign: cosign's --certificate-identity[-regexp] and --certificate-oidc-issuer[-regexp]. */
export interface IdentityRule {
  readonly subject?: string;
  /** Matched against the whole subject (anchored, unlike cosign's). */
  readonly subjectRegExp?: string;
  readonly issuer?: string;
  readonly issuerRegExp?: string;
  /** Extension values the certificate must carry exactly, by FULCIO_EXTENSIONS name. */
  readonly extensions?: Readonly<Record<string, string>>;
}

export interface KeylessTrust {
  readonly material: TrustMaterial;
  /** A certificate must match one of these. */
  readonly identities: readonly IdentityRule[];
}

/** A trusted_root.json (Sigstore's TrustedRoot, media type ...trustedroot+json;version=0.1 or 0.2). */
export function parseTrustedRoot(bytes: Uint8Array, what: string): TrustMaterial {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes).toString("utf8"));
  } catch {
    throw new SignError("MALFORMED_TRUST_ROOT", `${what} is not JSON`);
  }
  const media = (json as { mediaType?: unknown } | null)?.mediaType;
  if (typeof media !== "string" || !media.startsWith("application/vnd.dev.sigstore.trustedroot")) {
    throw new SignError(
      "MALFORMED_TRUST_ROOT",
      `${what} is not a Sigstore trusted root (mediaType ${String(media)})`,
    );
  }
  try {
    return sigstoreVerify().toTrustMaterial(protobufSpecs().TrustedRoot.fromJSON(json));
  } catch (e) {
    throw new SignError(
      "MALFORMED_TRUST_ROOT",
      `${what} is not a valid trusted root: ${(e as Error).message}`,
    );
  }
}

const full = (re: string) => new RegExp(`^(?:${re})$`);

/** What makes a rule unusable (a regexp that does not compile, an unknown extension), if anything. */
export function identityRuleProblem(rule: IdentityRule): string | undefined {
  for (const re of [rule.subjectRegExp, rule.issuerRegExp]) {
    if (re === undefined) continue;
    try {
      new RegExp(re);
    } catch {
      return `'${re}' is not a regular expression`;
    }
  }
  const unknown = Object.keys(rule.extensions ?? {}).find(
    (name) => !(name in FULCIO_EXTENSIONS) || name === "issuer",
  );
  return unknown === undefined ? undefined : `unknown Fulcio extension '${unknown}'`;
}

/** Why an identity does not satisfy a rule, or undefined when it does. */
export function identityMismatch(id: CertificateIdentity, rule: IdentityRule): string | undefined {
  if (rule.subject !== undefined && id.subject !== rule.subject)
    return `identity is '${id.subject}', expected '${rule.subject}'`;
  if (rule.subjectRegExp !== undefined && !full(rule.subjectRegExp).test(id.subject)) {
    return `identity '${id.subject}' does not match /${rule.subjectRegExp}/`;
  }
  if (rule.issuer !== undefined && id.issuer !== rule.issuer)
    return `OIDC issuer is '${id.issuer}', expected '${rule.issuer}'`;
  if (rule.issuerRegExp !== undefined && !full(rule.issuerRegExp).test(id.issuer)) {
    return `OIDC issuer '${id.issuer}' does not match /${rule.issuerRegExp}/`;
  }
  for (const [name, want] of Object.entries(rule.extensions ?? {})) {
    const got = id.extensions[name];
    if (got !== want)
      return `certificate extension ${name} is ${got === undefined ? "absent" : `'${got}'`}, expected '${want}'`;
  }
  return undefined;
}

export type KeylessResult =
  | { ok: true; identity: CertificateIdentity; key: KeyObject; time: Date }
  | { ok: false; reason: string; identity?: CertificateIdentity };

/**
 * Why a failed verification failed, when the reason is that the certificate was
 * not valid at a time the bundle claims (a log entry's integrated time, which
 * the verifier checks the chain at): sigstore-js only says the chain failed.
 */
function outsideValidity(cert: X509Certificate, bundle: Bundle): string | undefined {
  for (const e of bundle.verificationMaterial.tlogEntries) {
    const t = new Date(Number(e.integratedTime) * 1000);
    if (Number(e.integratedTime) > 0 && !cert.validForDate(t)) {
      return `the certificate, valid from ${cert.notBefore.toISOString()} to ${cert.notAfter.toISOString()}, was not valid at the log entry's integrated time ${t.toISOString()}`;
    }
  }
  return undefined;
}

/** The trusted times a verified bundle carries: Rekor integrated times and TSA times. */
function trustedTime(bundle: Bundle): Date {
  const times = bundle.verificationMaterial.tlogEntries
    .map((e) => Number(e.integratedTime) * 1000)
    .filter((t) => t > 0);
  return new Date(times.length > 0 ? Math.min(...times) : Date.now());
}

/**
 * Verify a keyless bundle against the trust material, then its certificate's
 * identity against the rules. The payload is not read here.
 */
export function verifyKeyless(bundle: Bundle, trust: KeylessTrust): KeylessResult {
  const der = leafCertificate(bundle);
  if (!der) return { ok: false, reason: "bundle carries no certificate" };
  let identity: CertificateIdentity;
  let cert: X509Certificate;
  try {
    cert = sigstoreCore().X509Certificate.parse(der);
    identity = certificateIdentity(cert);
  } catch (e) {
    return { ok: false, reason: `bundle certificate cannot be read: ${(e as Error).message}` };
  }
  let key;
  try {
    // A keyless signature needs a transparency-log entry, an SCT, and a trusted time
    // (the entry's integrated time, or an RFC 3161 timestamp).
    const { Verifier, toSignedEntity } = sigstoreVerify();
    const verifier = new Verifier(trust.material, {
      tlogThreshold: 1,
      ctlogThreshold: 1,
      timestampThreshold: 1,
    });
    key = verifier.verify(toSignedEntity(bundle)).key;
  } catch (e) {
    const why = outsideValidity(cert, bundle) ?? (e as Error).message;
    return {
      ok: false,
      reason: `keyless signature of ${identity.subject} does not verify: ${why}`,
      identity,
    };
  }
  if (trust.identities.length === 0) {
    return {
      ok: false,
      reason: `signed keylessly by '${identity.subject}' (issuer '${identity.issuer}'), but no identity is trusted: give --certificate-identity and --certificate-oidc-issuer`,
      identity,
    };
  }
  const why = trust.identities.map((r) => identityMismatch(identity, r));
  if (why.every((w) => w !== undefined)) {
    return { ok: false, reason: `certificate ${why[0] ?? ""}`, identity };
  }
  return { ok: true, identity, key, time: trustedTime(bundle) };
}

/**
 * The RFC 3161 timestamps and log entries of a bundle signed with a key already
 * verified: each must verify against the trust material's timestamp authorities
 * and logs, and the key is then trusted at those times.
 */
export function verifyTimestamps(
  bundle: Bundle,
  key: KeyObject,
  material: TrustMaterial,
): { detail: string } | { reason: string } {
  const stamps =
    bundle.verificationMaterial.timestampVerificationData?.rfc3161Timestamps.length ?? 0;
  const logs = bundle.verificationMaterial.tlogEntries.length;
  const withKey: TrustMaterial = {
    ...material,
    publicKey: () => ({ publicKey: key, validFor: () => true }),
  };
  try {
    const { Verifier, toSignedEntity } = sigstoreVerify();
    new Verifier(withKey, {
      tlogThreshold: logs > 0 ? 1 : 0,
      ctlogThreshold: 0,
      timestampThreshold: 1,
    }).verify(toSignedEntity(bundle));
  } catch (e) {
    return { reason: `the bundle's timestamps do not verify: ${(e as Error).message}` };
  }
  const parts = [
    ...(stamps > 0 ? [`${stamps} RFC 3161 timestamp(s)`] : []),
    ...(logs > 0 ? [`${logs} log entr${logs === 1 ? "y" : "ies"}`] : []),
  ];
  return { detail: `${parts.join(" and ")} verified` };
}
