// The Sigstore options every signing command and every verifying command shares:
// keyless signing and timestamps (signing), trusted roots and identities (verifying).
import { join } from "node:path";
import type { TrustMaterial } from "@sigstore/verify";
import { keyBundleSigner, type BundleSigner, type Signer } from "../sign/index.js";
import {
  FULCIO_EXTENSIONS,
  identityRuleProblem,
  type IdentityRule,
  type KeylessTrust,
} from "../verify/index.js";
import { strings } from "./args.js";
import type { Invocation } from "./command.js";
import { cacheDir } from "./config.js";
import { CliError } from "./errors.js";

/** Sigstore's public-good instance. */
export const PUBLIC_GOOD = {
  fulcio: "https://fulcio.sigstore.dev",
  rekor: "https://rekor.sigstore.dev",
} as const;

// The Sigstore clients (and their dependencies) load only when a command signs or
// verifies the Sigstore way: every other command starts without them.
const signing = () => import("../system/sigstore-signing.js");
const trustRoots = () => import("../system/trust-root.js");

export const SIGNING_OPTIONS = {
  keyless: { type: "boolean" },
  "identity-token": { type: "string" },
  "fulcio-url": { type: "string" },
  "rekor-url": { type: "string" },
  "rekor-version": { type: "string" },
  "timestamp-url": { type: "string" },
  "signing-config": { type: "string" },
} as const;

export const SIGNING_HELP = `Sigstore (docs/keyless.md):
  --keyless           sign with an ephemeral key and a Fulcio certificate for the
                      OIDC identity of --identity-token FILE, SIGSTORE_ID_TOKEN or
                      GitHub Actions (audience sigstore); logged in Rekor
  --identity-token F  the OIDC token file (read again for every certificate)
  --fulcio-url URL    Fulcio (default ${PUBLIC_GOOD.fulcio})
  --rekor-url URL     Rekor (default ${PUBLIC_GOOD.rekor} when keyless; with a
                      key, logs the signature only when given)
  --rekor-version N   Rekor's API: 1 (default; a dsse entry) or 2
  --timestamp-url URL an RFC 3161 timestamp authority: adds a trusted time to
                      the bundle (key-signed bundles need it for sigstore-go)
  --signing-config F  the services of a Sigstore SigningConfig file (v0.2);
                      the flags above override it`;

/** The bundle signer the options ask for, around the key (which keyless signing does not use). */
export async function bundleSigner(
  inv: Invocation,
  key: () => Promise<Signer>,
  explicitKey: boolean,
): Promise<BundleSigner> {
  const v = inv.values;
  const str = (name: string) => (typeof v[name] === "string" ? v[name] : undefined);
  const version = str("rekor-version");
  if (version !== undefined && version !== "1" && version !== "2") {
    throw new CliError("USAGE", "--rekor-version takes 1 or 2");
  }
  const file = str("signing-config");
  if (v.keyless !== true) {
    for (const flag of ["identity-token", "fulcio-url"]) {
      if (v[flag] !== undefined) throw new CliError("USAGE", `--${flag} needs --keyless`);
    }
    // Signing with a key and no service is most signing: it need not load the
    // Sigstore clients (a tenth of a second of start-up).
    if (file === undefined && str("timestamp-url") === undefined && str("rekor-url") === undefined)
      return keyBundleSigner(await key());
  }
  const { identityToken, keylessSigner, servicesFromSigningConfig, timestampedKeySigner } =
    await signing();
  const config = file !== undefined ? await servicesFromSigningConfig(file) : undefined;
  const tsaURL = str("timestamp-url") ?? config?.tsaURL;
  const rekorVersion = version !== undefined ? (Number(version) as 1 | 2) : config?.rekorVersion;
  const common = {
    ...(tsaURL !== undefined ? { tsaURL } : {}),
    ...(rekorVersion !== undefined ? { rekorVersion } : {}),
  };
  if (v.keyless === true) {
    if (explicitKey) {
      throw new CliError("USAGE", "--keyless signs without a key: drop the key option");
    }
    return keylessSigner({
      ...common,
      fulcioURL: str("fulcio-url") ?? config?.fulcioURL ?? PUBLIC_GOOD.fulcio,
      rekorURL: str("rekor-url") ?? config?.rekorURL ?? PUBLIC_GOOD.rekor,
      identity: identityToken(
        str("identity-token") !== undefined ? { file: str("identity-token") } : {},
      ),
    });
  }
  const signer = await key();
  // With a key, the log is asked only when named: --rekor-url (a signing config's
  // Rekor is for keyless signing).
  if (tsaURL === undefined && str("rekor-url") === undefined) return keyBundleSigner(signer);
  return timestampedKeySigner(signer, {
    ...common,
    ...(str("rekor-url") !== undefined ? { rekorURL: str("rekor-url") } : {}),
  });
}

const GITHUB_FLAGS: Readonly<Record<string, string>> = {
  "certificate-github-workflow-repository": "githubWorkflowRepository",
  "certificate-github-workflow-ref": "githubWorkflowRef",
  "certificate-github-workflow-sha": "githubWorkflowSha",
  "certificate-github-workflow-name": "githubWorkflowName",
  "certificate-github-workflow-trigger": "githubWorkflowTrigger",
};

export const TRUST_OPTIONS = {
  "trusted-root": { type: "string" },
  "certificate-identity": { type: "string" },
  "certificate-identity-regexp": { type: "string" },
  "certificate-oidc-issuer": { type: "string" },
  "certificate-oidc-issuer-regexp": { type: "string" },
  "certificate-extension": { type: "string", multiple: true },
  ...Object.fromEntries(Object.keys(GITHUB_FLAGS).map((f) => [f, { type: "string" as const }])),
} as const;

export const TRUST_HELP = `Keyless signers (docs/keyless.md; cosign's flag names):
  --certificate-identity S / --certificate-identity-regexp RE
                      the certificate's subject (an email, a workflow URI);
                      a regexp must match the whole subject
  --certificate-oidc-issuer S / --certificate-oidc-issuer-regexp RE
                      the OIDC issuer that vouched for it
  --certificate-github-workflow-repository|ref|sha|name|trigger V
                      a GitHub Actions extension the certificate must carry
  --certificate-extension NAME=V
                      any Fulcio extension by name (sourceRepositoryURI,
                      buildSignerURI, runnerEnvironment, ...), repeatable
  --trusted-root FILE a Sigstore trusted_root.json (default: the public-good
                      root through TUF, cached in ${join("$XDG_CACHE_HOME", "provenix", "tuf")});
                      also checks the timestamps of key-signed bundles`;

/** The trust material of --trusted-root, else the public-good root through TUF (cached). */
export async function trustMaterial(inv: Invocation): Promise<TrustMaterial> {
  const file = inv.values["trusted-root"];
  const { publicGoodTrustedRoot, trustedRootFile } = await trustRoots();
  return typeof file === "string"
    ? trustedRootFile(file)
    : publicGoodTrustedRoot({ cachePath: join(cacheDir(), "tuf") });
}

/** The keyless trust the options give, or undefined when they name none. */
export async function keylessTrust(inv: Invocation): Promise<KeylessTrust | undefined> {
  const v = inv.values;
  const str = (name: string) => (typeof v[name] === "string" ? v[name] : undefined);
  const extensions: Record<string, string> = {};
  for (const [flag, name] of Object.entries(GITHUB_FLAGS)) {
    const value = str(flag);
    if (value !== undefined) extensions[name] = value;
  }
  for (const pair of strings(v["certificate-extension"])) {
    const i = pair.indexOf("=");
    const name = pair.slice(0, i);
    if (i <= 0 || !(name in FULCIO_EXTENSIONS) || name === "issuer") {
      throw new CliError(
        "USAGE",
        `--certificate-extension takes NAME=VALUE, NAME one of ${Object.keys(FULCIO_EXTENSIONS)
          .filter((n) => n !== "issuer")
          .join(", ")}`,
      );
    }
    extensions[name] = pair.slice(i + 1);
  }
  const subject = str("certificate-identity");
  const subjectRegExp = str("certificate-identity-regexp");
  const issuer = str("certificate-oidc-issuer");
  const issuerRegExp = str("certificate-oidc-issuer-regexp");
  const named = [subject, subjectRegExp, issuer, issuerRegExp].some((x) => x !== undefined);
  if (named || Object.keys(extensions).length > 0) {
    if ((subject === undefined) === (subjectRegExp === undefined)) {
      throw new CliError(
        "USAGE",
        "keyless verification needs one of --certificate-identity or --certificate-identity-regexp",
      );
    }
    if ((issuer === undefined) === (issuerRegExp === undefined)) {
      throw new CliError(
        "USAGE",
        "keyless verification needs one of --certificate-oidc-issuer or --certificate-oidc-issuer-regexp",
      );
    }
  }
  const rule: IdentityRule = {
    ...(subject !== undefined ? { subject } : {}),
    ...(subjectRegExp !== undefined ? { subjectRegExp } : {}),
    ...(issuer !== undefined ? { issuer } : {}),
    ...(issuerRegExp !== undefined ? { issuerRegExp } : {}),
    ...(Object.keys(extensions).length > 0 ? { extensions } : {}),
  };
  const problem = identityRuleProblem(rule);
  if (problem) throw new CliError("USAGE", problem);
  if (!named && str("trusted-root") === undefined) return undefined;
  const material = await trustMaterial(inv);

  return { material, identities: named ? [rule] : [] };
}
