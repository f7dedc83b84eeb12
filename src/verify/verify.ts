import { claimedBuildLevel, withoutBuildLevel } from "../assess/index.js";
import {
  IN_TOTO_PAYLOAD_TYPE,
  isInTotoPayloadType,
  STATEMENT_TYPE_V01,
  STATEMENT_TYPE,
  type Statement,
} from "../attest/index.js";
import {
  verifyKeyless,
  verifyTimestamps,
  type CertificateIdentity,
  type KeylessTrust,
} from "./keyless.js";
import {
  parseBundle,
  type ParsedBundle,
  preAuthEncoding,
  SignError,
  sigstoreKeyHint,
  verifySignature,
  verifySignatureAsync,
  type PublicKey,
} from "../sign/index.js";

// Verifying an attestation, in the order the specs ask for: DSSE protocol.md
// ("verify before parsing"), then SLSA verifying-artifacts.md step 1 (subject,
// predicateType) and step 2 (builder identity).

export type CheckName =
  "bundle" | "payloadType" | "signature" | "statement" | "predicateType" | "subject" | "builder";

export interface Check {
  readonly name: CheckName;
  readonly ok: boolean;
  readonly detail: string;
}

export interface Expectations {
  /** Keys whose signatures are trusted. */
  readonly trustedKeys: readonly PublicKey[];
  /**
   * Keyless signers trusted (a trusted root and identity rules). Also the trust
   * material that checks the timestamps and log entries of key-signed bundles.
   */
  readonly keyless?: KeylessTrust;
  /**
   * Statement `_type`s accepted: in-toto Statement v1 by default. Bundles from other
   * tools (a bundle file, an image) may also be v0.1, which cosign 2 writes.
   */
  readonly statementTypes?: readonly string[];
  readonly predicateType?: string;
  /** Accepted `runDetails.builder.id` values; unset or empty accepts any. */
  readonly builderIds?: readonly string[];
  /** The SLSA Build level builder.id must claim at least (its slsa-build-level parameter). */
  readonly minBuildLevel?: number;
  /** The artifact this attestation must be about: a subject with this name and sha256. */
  readonly subject?: { readonly name: string; readonly sha256: string };
  /**
   * Bundles parsed and signatures checked ahead (preverifySignatures, on all
   * cores): what is found here for these bytes stands for doing it again.
   */
  readonly signatures?: SignatureResults;
}

/** A bundle parsed once, and the trusted keys its DSSE signature was checked with. */
interface Prechecked {
  readonly parsed: ParsedBundle;
  readonly pae: Buffer;
  readonly byKey: Map<PublicKey, boolean>;
}

/**
 * Bundles parsed, and their signatures checked, ahead (preverifySignatures): by the
 * bundle's bytes object, so verifyAttestation of those same bytes neither parses
 * them again nor checks a signature that was checked. Anything else is checked then.
 */
export class SignatureResults {
  private readonly bundles = new WeakMap<Uint8Array, Prechecked>();

  record(bytes: Uint8Array, entry: Prechecked): void {
    this.bundles.set(bytes, entry);
  }

  /** What was found ahead for exactly these bytes. */
  of(bytes: Uint8Array): Prechecked | undefined {
    return this.bundles.get(bytes);
  }
}

/** The trusted keys in the order to try them: the one the bundle names first. */
function keysToTry(trusted: readonly PublicKey[], hint: string): PublicKey[] {
  const named = (k: PublicKey) => Number(k.keyid === hint || sigstoreKeyHint(k) === hint);
  return [...trusted].sort((a, b) => named(b) - named(a));
}

/**
 * Parse key-signed bundles and check their DSSE signatures ahead, on libuv's
 * thread pool, with the keys verifyAttestation would try, in its order. Bundles
 * that do not parse, and keyless ones, are left to verifyAttestation.
 */
export async function preverifySignatures(
  bundles: readonly Uint8Array[],
  keys: readonly PublicKey[],
): Promise<SignatureResults> {
  const results = new SignatureResults();
  const check = async (bytes: Uint8Array) => {
    let parsed;
    try {
      parsed = parseBundle(bytes);
    } catch {
      return;
    }
    const [sig] = parsed.envelope.signatures;
    if (!sig || parsed.certificate) return;
    const pae = preAuthEncoding(parsed.envelope.payloadType, parsed.envelope.payload);
    const byKey = new Map<PublicKey, boolean>();
    results.record(bytes, { parsed, pae, byKey });
    for (const k of keysToTry(keys, sig.keyid || parsed.keyHint || "")) {
      const ok = await verifySignatureAsync(k, pae, sig.sig);
      byKey.set(k, ok);
      if (ok) return;
    }
  };
  // All at once: the pool's queue stays full while the caller goes on with other
  // work (verifyWithPolicy evaluates the previous chunk meanwhile); each check's
  // state is held until the last one ends, so callers give a chunk at a time.
  await Promise.all(bundles.map(check));
  return results;
}

export interface AttestationVerification {
  readonly ok: boolean;
  readonly checks: readonly Check[];
  /** The first failed check's detail, when not ok. */
  readonly reason?: string;
  /** The trusted key that verified the signature. */
  readonly signer?: PublicKey;
  /** For a keyless signature: who the certificate was issued to. */
  readonly certificate?: CertificateIdentity;
  /** Present only once the signature has verified. */
  readonly statement?: Statement;
}

class Checks {
  readonly list: Check[] = [];
  pass(name: CheckName, detail: string): void {
    this.list.push({ name, ok: true, detail });
  }
  fail(
    name: CheckName,
    detail: string,
    extra: Partial<AttestationVerification> = {},
  ): AttestationVerification {
    this.list.push({ name, ok: false, detail });
    return { ok: false, checks: this.list, reason: detail, ...extra };
  }
}

/** Parse JSON, refusing duplicate object keys (parsers disagree on which one wins). */
export function parseJsonStrict(text: string): unknown {
  const value: unknown = JSON.parse(text);
  // JSON.parse keeps one of each duplicated key: then the text has more keys than
  // the value. Counting is cheap; naming the duplicate takes the full scan.
  if (keysInText(text) !== keysInValue(value)) {
    throw new SyntaxError(`duplicate key "${duplicateKey(text) ?? "?"}"`);
  }
  return value;
}

/** Whether the quote at `j` is escaped (an odd run of backslashes before it). */
function escapedQuote(text: string, j: number): boolean {
  let k = j - 1;
  while (text.charCodeAt(k) === 0x5c /* \ */) k--;
  return (j - k) % 2 === 0;
}

/** Object keys in valid JSON text: the strings followed by a colon. */
function keysInText(text: string): number {
  let keys = 0;
  for (let i = text.indexOf('"'); i !== -1;) {
    let j = text.indexOf('"', i + 1);
    while (escapedQuote(text, j)) j = text.indexOf('"', j + 1);
    let k = j + 1;
    for (let c = text.charCodeAt(k); c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;)
      c = text.charCodeAt(++k);
    if (text.charCodeAt(k) === 0x3a /* : */) keys++;
    i = text.indexOf('"', k);
  }
  return keys;
}

function keysInValue(v: unknown): number {
  if (v === null || typeof v !== "object") return 0;
  let keys = 0;
  if (Array.isArray(v)) {
    for (const e of v) keys += keysInValue(e);
    return keys;
  }
  for (const k in v) keys += 1 + keysInValue((v as Record<string, unknown>)[k]);
  return keys;
}

/** The first key that appears twice in one object of valid JSON text. */
function duplicateKey(text: string): string | undefined {
  // The text is valid JSON, so a scan that skips strings sees only structure.
  const objects: (Set<string> | null)[] = [];
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const ch = text.charCodeAt(i);
    if (ch === 0x7b /* { */) objects.push(new Set());
    else if (ch === 0x5b /* [ */) objects.push(null);
    else if (ch === 0x7d /* } */ || ch === 0x5d /* ] */) objects.pop();
    else if (ch === 0x22 /* " */) {
      let j = i + 1;
      let escaped = false;
      for (let c = text.charCodeAt(j); c !== 0x22; c = text.charCodeAt(j)) {
        if (c === 0x5c /* \ */) {
          escaped = true;
          j += 2;
        } else j++;
      }
      const keys = objects.at(-1);
      if (keys) {
        let k = j + 1;
        for (let c = text.charCodeAt(k); c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;)
          c = text.charCodeAt(++k);
        if (text.charCodeAt(k) === 0x3a /* : */) {
          const key = escaped ? (JSON.parse(text.slice(i, j + 1)) as string) : text.slice(i + 1, j);
          if (keys.has(key)) return key;
          keys.add(key);
        }
      }
      i = j;
    }
  }
  return undefined;
}

function isStatement(v: unknown): v is Statement {
  if (v === null || typeof v !== "object" || Array.isArray(v)) return false;
  const s = v as Record<string, unknown>;
  return (
    typeof s._type === "string" &&
    Array.isArray(s.subject) &&
    s.subject.every((d) => d !== null && typeof d === "object") &&
    typeof s.predicateType === "string"
  );
}

/** Equal builder ids, ignoring the slsa-build-level claim (checked on its own). */
function sameBuilder(expected: string, actual: string): boolean {
  return expected === actual || withoutBuildLevel(expected) === withoutBuildLevel(actual);
}

/** A provenance statement's runDetails.builder.id, if it has one. */
export function builderIdOf(statement: Statement): string | undefined {
  const p = statement.predicate as { runDetails?: { builder?: { id?: unknown } } } | undefined;
  const id = p?.runDetails?.builder?.id;
  return typeof id === "string" ? id : undefined;
}

/** Statement types of bundles from other tools: v1, and cosign 2's v0.1. */
export const FOREIGN_STATEMENT_TYPES: readonly string[] = [STATEMENT_TYPE, STATEMENT_TYPE_V01];

interface Signed {
  readonly signer: PublicKey;
  readonly detail: string;
  readonly certificate?: CertificateIdentity;
}

/** The DSSE signature of a key-signed bundle, by one of the trusted keys. */
function keySignature(
  parsed: ParsedBundle,
  sig: { keyid: string; sig: Buffer },
  expect: Expectations,
  pre: Prechecked | undefined,
): Signed | { reason: string } {
  const { envelope, keyHint } = parsed;
  // Keyids and hints are unauthenticated (DSSE): they only order the keys we try.
  // Bundles before 0.2 name the key by provenix's keyid; newer ones, and cosign's,
  // by the Sigstore hint.
  const hint = sig.keyid || keyHint || "";
  const keys = keysToTry(expect.trustedKeys, hint);
  if (keys.length === 0) return { reason: "no trusted keys were given" };
  const pae = pre?.pae ?? preAuthEncoding(envelope.payloadType, envelope.payload);
  const signer = keys.find((k) => pre?.byKey.get(k) ?? verifySignature(k, pae, sig.sig));
  if (!signer) {
    const as = hint ? ` (signed as '${hint}')` : "";
    return { reason: `signature does not verify with any of ${keys.length} trusted key(s)${as}` };
  }
  const detail = `signed by trusted key '${signer.keyid}' (${signer.algorithm})`;
  const material = parsed.bundle.verificationMaterial;
  const stamped =
    (material.timestampVerificationData?.rfc3161Timestamps.length ?? 0) > 0 ||
    material.tlogEntries.length > 0;
  if (!stamped) return { signer, detail };
  if (!expect.keyless) {
    return { signer, detail: `${detail}; its timestamps were not checked (no trusted root)` };
  }
  const t = verifyTimestamps(parsed.bundle, signer.key, expect.keyless.material);
  return "reason" in t ? t : { signer, detail: `${detail}, ${t.detail}` };
}

/** A keyless bundle: certificate, log, time and identity (keyless.ts). */
function keylessSignature(
  bundle: ParsedBundle["bundle"],
  expect: Expectations,
): Signed | { reason: string } {
  if (!expect.keyless) {
    return {
      reason:
        "signed keylessly (a Fulcio certificate), and no identity is trusted: give --certificate-identity and --certificate-oidc-issuer",
    };
  }
  const r = verifyKeyless(bundle, expect.keyless);
  if (!r.ok) return { reason: r.reason };
  const { subject, issuer } = r.identity;
  return {
    signer: {
      keyid: `${subject} (${issuer})`,
      algorithm: r.key.asymmetricKeyType === "ed25519" ? "ed25519" : "ecdsa-p256",
      key: r.key,
      identity: `keyless:${issuer}:${subject}`,
    },
    certificate: r.identity,
    detail: `signed keylessly by '${subject}' (issuer '${issuer}'), logged ${r.time.toISOString()}`,
  };
}

/** Verify a Sigstore bundle's signature, then its statement, against expectations. Pure. */
export function verifyAttestation(
  bundleBytes: Uint8Array,
  expect: Expectations,
): AttestationVerification {
  const c = new Checks();
  const pre = expect.signatures?.of(bundleBytes);
  let parsed = pre?.parsed;
  if (!parsed) {
    try {
      parsed = parseBundle(bundleBytes);
    } catch (e) {
      if (e instanceof SignError) return c.fail("bundle", e.message);
      throw e;
    }
  }
  const { envelope, keyHint } = parsed;
  const [sig, ...more] = envelope.signatures;
  if (sig === undefined || more.length > 0) {
    return c.fail(
      "bundle",
      `bundle must carry exactly one signature, has ${envelope.signatures.length}`,
    );
  }
  if (keyHint !== undefined && sig.keyid !== "" && keyHint !== sig.keyid) {
    return c.fail(
      "bundle",
      `bundle key hint '${keyHint}' differs from the DSSE keyid '${sig.keyid}'`,
    );
  }
  c.pass("bundle", `Sigstore bundle ${parsed.mediaType} with one DSSE signature`);

  if (!isInTotoPayloadType(envelope.payloadType)) {
    return c.fail(
      "payloadType",
      `payloadType is '${envelope.payloadType}', expected '${IN_TOTO_PAYLOAD_TYPE}' or application/vnd.in-toto.<predicate>+json`,
    );
  }
  c.pass("payloadType", envelope.payloadType);

  const signed = parsed.certificate
    ? keylessSignature(parsed.bundle, expect)
    : keySignature(parsed, sig, expect, pre);
  if ("reason" in signed) return c.fail("signature", signed.reason);
  const { signer } = signed;
  const who = signed.certificate ? { signer, certificate: signed.certificate } : { signer };
  c.pass("signature", signed.detail);

  let statement: unknown;
  try {
    statement = parseJsonStrict(envelope.payload.toString("utf8"));
  } catch (e) {
    return c.fail("statement", `payload is not valid JSON: ${(e as Error).message}`, who);
  }
  if (!isStatement(statement)) {
    return c.fail(
      "statement",
      "payload is not an in-toto statement (needs _type, subject, predicateType)",
      who,
    );
  }
  const type: string = statement._type;
  if (!(expect.statementTypes ?? [STATEMENT_TYPE]).includes(type)) {
    return c.fail("statement", `statement _type is '${type}', expected '${STATEMENT_TYPE}'`, who);
  }
  c.pass("statement", type);
  const found = { ...who, statement };

  if (expect.predicateType !== undefined && statement.predicateType !== expect.predicateType) {
    return c.fail(
      "predicateType",
      `predicateType is '${statement.predicateType}', expected '${expect.predicateType}'`,
      found,
    );
  }
  c.pass("predicateType", statement.predicateType);

  if (expect.subject) {
    const { name, sha256 } = expect.subject;
    const named = statement.subject.filter((s) => s.name === name);
    if (named.length === 0) {
      return c.fail("subject", `attestation has no subject named ${name}`, found);
    }
    if (!named.some((s) => s.digest?.sha256 === sha256)) {
      const attested = named.map((s) => s.digest?.sha256 ?? "none").join(", ");
      return c.fail(
        "subject",
        `subject digest mismatch for ${name}: attested sha256 ${attested}, actual ${sha256}`,
        found,
      );
    }
    c.pass("subject", `${name} sha256:${sha256}`);
  }

  const id = builderIdOf(statement);
  if (expect.builderIds && expect.builderIds.length > 0) {
    if (id === undefined || !expect.builderIds.some((b) => sameBuilder(b, id))) {
      return c.fail(
        "builder",
        `builder.id '${id ?? "none"}' is not one of the expected builders`,
        found,
      );
    }
    c.pass("builder", id);
  } else if (id !== undefined) {
    c.pass("builder", `${id} (any builder accepted)`);
  }
  if (expect.minBuildLevel !== undefined) {
    const level = id === undefined ? undefined : claimedBuildLevel(id);
    if (level === undefined || level < expect.minBuildLevel) {
      return c.fail(
        "builder",
        level === undefined
          ? `builder.id '${id ?? "none"}' claims no SLSA Build level; L${expect.minBuildLevel} required`
          : `builder.id claims SLSA Build L${level}; L${expect.minBuildLevel} required`,
        found,
      );
    }
    c.pass("builder", `claims SLSA Build L${level} (L${expect.minBuildLevel} required)`);
  }
  return { ok: true, checks: c.list, ...found };
}
