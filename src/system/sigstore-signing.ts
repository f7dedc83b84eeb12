// Signing the Sigstore way, with its services (sigstore-js's @sigstore/sign does the
// protocol): keyless (an ephemeral key, a Fulcio certificate for the OIDC identity,
// a Rekor entry) and RFC 3161 timestamps for bundles signed with a key.
import { readFile } from "node:fs/promises";
import type { Bundle } from "@sigstore/bundle";
import { X509Certificate } from "@sigstore/core";
import { SigningConfig, type Service } from "@sigstore/protobuf-specs";
import {
  CIContextProvider,
  DSSEBundleBuilder,
  FulcioSigner,
  RekorWitness,
  TSAWitness,
  type IdentityProvider,
  type Witness,
} from "@sigstore/sign";
import {
  dsseBundle,
  serializeBundle,
  SignError,
  type BundleSigner,
  type Signer,
} from "../sign/index.js";
import { certificateIdentity, leafCertificate } from "../verify/index.js";

/**
 * The services a Sigstore SigningConfig (v0.2, the file the public-good TUF
 * repository publishes as signing_config.v0.2.json) names: per kind, the newest
 * service whose API version provenix speaks and whose validity has not ended.
 */
export async function servicesFromSigningConfig(file: string): Promise<{
  fulcioURL: string;
  rekorURL?: string;
  rekorVersion?: 1 | 2;
  tsaURL?: string;
}> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(file, "utf8"));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? "not JSON";
    throw new SignError("MALFORMED_TRUST_ROOT", `cannot read signing config ${file}: ${code}`);
  }
  const media = (json as { mediaType?: unknown } | null)?.mediaType;
  if (
    typeof media !== "string" ||
    !media.startsWith("application/vnd.dev.sigstore.signingconfig")
  ) {
    throw new SignError(
      "MALFORMED_TRUST_ROOT",
      `${file} is not a Sigstore signing config (mediaType ${String(media)})`,
    );
  }
  const config = SigningConfig.fromJSON(json);
  const now = Date.now();
  const pick = (services: readonly Service[], maxVersion: number) =>
    services
      .filter((x) => x.majorApiVersion <= maxVersion)
      .filter((x) => !x.validFor?.end || x.validFor.end.getTime() >= now)
      .sort((a, b) => (b.validFor?.start?.getTime() ?? 0) - (a.validFor?.start?.getTime() ?? 0))[0];
  const ca = pick(config.caUrls, 1);
  if (!ca) throw new SignError("MALFORMED_TRUST_ROOT", `${file} names no usable Fulcio (caUrls)`);
  const tlog = config.rekorTlogConfig ? pick(config.rekorTlogUrls, 2) : undefined;
  const tsa = config.tsaConfig ? pick(config.tsaUrls, 1) : undefined;
  return {
    fulcioURL: ca.url,
    ...(tlog ? { rekorURL: tlog.url, rekorVersion: tlog.majorApiVersion === 2 ? 2 : 1 } : {}),
    ...(tsa ? { tsaURL: tsa.url } : {}),
  };
}

export interface ServiceOptions {
  /** Rekor's base URL; unset: no transparency-log entry (key-signed bundles). */
  readonly rekorURL?: string;
  /** Rekor API major version: 1 (a dsse entry), or 2 (rekor-tiles). */
  readonly rekorVersion?: 1 | 2;
  /** A timestamp authority's base URL (RFC 3161); unset: no timestamp. */
  readonly tsaURL?: string;
  /** Per request, ms. */
  readonly timeoutMs?: number;
}

/**
 * Where the OIDC identity token comes from, in this order: a file (read again
 * for every certificate, so that a token refreshed on disk is picked up), the
 * SIGSTORE_ID_TOKEN environment variable, GitHub Actions' token service (audience
 * "sigstore"). The token never appears in a message.
 */
export function identityToken(o: { file?: string; env?: NodeJS.ProcessEnv }): IdentityProvider {
  const env = o.env ?? process.env;
  return {
    async getToken() {
      if (o.file !== undefined) {
        try {
          return (await readFile(o.file, "utf8")).trim();
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code ?? "unreadable";
          throw new SignError("IDENTITY_TOKEN", `cannot read identity token ${o.file}: ${code}`);
        }
      }
      const fromEnv = env.SIGSTORE_ID_TOKEN;
      if (fromEnv !== undefined && fromEnv.trim() !== "") return fromEnv.trim();
      if (env.ACTIONS_ID_TOKEN_REQUEST_URL && env.ACTIONS_ID_TOKEN_REQUEST_TOKEN) {
        return new CIContextProvider("sigstore").getToken();
      }
      throw new SignError(
        "IDENTITY_TOKEN",
        "keyless signing needs an OIDC identity token: --identity-token FILE, SIGSTORE_ID_TOKEN, or GitHub Actions with id-token: write",
      );
    },
  };
}

function witnesses(o: ServiceOptions): Witness[] {
  const fetch = { timeout: o.timeoutMs ?? 30_000, retry: 2 };
  return [
    ...(o.rekorURL !== undefined
      ? [
          new RekorWitness({
            rekorBaseURL: o.rekorURL,
            entryType: "dsse",
            majorApiVersion: o.rekorVersion ?? 1,
            ...fetch,
          }),
        ]
      : []),
    ...(o.tsaURL !== undefined ? [new TSAWitness({ tsaBaseURL: o.tsaURL, ...fetch })] : []),
  ];
}

/**
 * A failure of a service or of the token, as one line. sigstore-js puts the token
 * into some of its messages (a token that is not a JWT): those are replaced, and
 * anything that still contains the token is cut out.
 */
async function guarded<T>(token: () => string | undefined, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof SignError) throw e;
    const err = e as Error & { code?: string; cause?: unknown };
    if (err.cause instanceof SignError) throw err.cause;
    if (err.code === "IDENTITY_TOKEN_PARSE_ERROR") {
      throw new SignError("IDENTITY_TOKEN", "the identity token is not a JWT with a subject");
    }
    const secret = token();
    let message = String(err.message || err.code || e);
    if (secret) message = message.split(secret).join("<identity token>");
    const cause = err.cause as { message?: string } | undefined;
    const detail =
      cause?.message && !(secret && cause.message.includes(secret)) ? `: ${cause.message}` : "";
    throw new SignError("SIGNING_SERVICE", `${message}${detail}`.replace(/\s+/g, " "));
  }
}

/** Keyless: per signing, a new ephemeral P-256 key and a Fulcio certificate for it. */
export function keylessSigner(
  o: ServiceOptions & { fulcioURL: string; identity: IdentityProvider },
): BundleSigner {
  let lastToken: string | undefined;
  const identity: IdentityProvider = {
    getToken: async () => (lastToken = await o.identity.getToken()),
  };
  return {
    name: "keyless",
    async signBundle(payload, payloadType) {
      const builder = new DSSEBundleBuilder({
        signer: new FulcioSigner({
          fulcioBaseURL: o.fulcioURL,
          identityProvider: identity,
          timeout: o.timeoutMs ?? 30_000,
          retry: 2,
        }),
        witnesses: witnesses(o),
      });
      const bundle: Bundle = await guarded(
        () => lastToken,
        () => builder.create({ data: payload, type: payloadType }),
      );
      const der = leafCertificate(bundle);
      if (!der) throw new SignError("SIGNING_SERVICE", "Fulcio returned no certificate");
      const who = certificateIdentity(X509Certificate.parse(der));
      return { bundle: serializeBundle(bundle), keyid: `${who.subject} (${who.issuer})` };
    },
  };
}

/** A key's bundles with an RFC 3161 timestamp over the signature (and a log entry if asked). */
export function timestampedKeySigner(signer: Signer, o: ServiceOptions): BundleSigner {
  const keyid = signer.publicKey.keyid;
  const ws = witnesses(o);
  return {
    name: keyid,
    async signBundle(payload, payloadType) {
      const bundle = dsseBundle(payload, payloadType, signer);
      const pem = signer.publicKey.key.export({ format: "pem", type: "spki" }).toString();
      const got = await guarded(
        () => undefined,
        () => Promise.all(ws.map((w) => w.testify(bundle.content, pem))),
      );
      for (const g of got) {
        bundle.verificationMaterial.tlogEntries.push(...(g.tlogEntries ?? []));
        bundle.verificationMaterial.timestampVerificationData?.rfc3161Timestamps.push(
          ...(g.rfc3161Timestamps ?? []),
        );
      }
      return { bundle: serializeBundle(bundle), keyid };
    },
  };
}
