import { ChainsError } from "../chains/error.js";
import { CodedError } from "../error.js";
import { NixError } from "../nix/error.js";
import { CacheError } from "../cache/error.js";
import { OciError } from "../oci/error.js";
import { PolicyError } from "../policy/policy.js";
import { SignError } from "../sign/error.js";
import { StoreError } from "../store/error.js";
import { VulnError } from "../vulns/advisory.js";

export type CliErrorCode = "USAGE" | "CONFIG" | "INPUT";

export class CliError extends CodedError<CliErrorCode> {}

/** Exit codes; documented in `provenix --help` and the README. */
export const EXIT = {
  OK: 0,
  VERIFY_FAILED: 1,
  USAGE: 2,
  INPUT: 3,
  KEY: 4,
  STORE: 5,
  NIX: 6,
  REGISTRY: 7,
  INTERNAL: 70,
} as const;

export const EXIT_CODE_HELP = `Exit codes:
  0   success (for verify: every target verified)
  1   verification failed: the evidence does not hold (reasons printed)
  2   usage error: unknown command or option, missing argument, bad config
      or policy file (including a nix.conf that already has another
      post-build-hook)
  3   bad input: path outside the store, not built, malformed .drv, bundle,
      trusted root, advisory record or VEX document
  4   key problem: unreadable, malformed or insecure (group/other-readable) key,
      a PKCS#11 key that cannot be used; no usable identity token for keyless
      signing
  5   attestation store problem: corrupt, foreign, locked, unwritable, disk full,
      or another daemon already running on it
  6   Nix problem: Nix not installed, a nix command failed, Nix's database or
      a build log unreadable
  7   registry, binary-cache or signing-service problem: unreachable, timed
      out, credentials refused, access denied, server errors after retries, a
      digest the registry disagrees with, an upload the cache refused, Fulcio,
      Rekor or a timestamp authority failing or refusing
  70  internal error: a bug in provenix; please report it`;

/** Map any error to an exit code and one line. Unknown errors are bugs. */
export function describeError(e: unknown): { exit: number; message: string } {
  if (e instanceof CliError) {
    return { exit: e.code === "INPUT" ? EXIT.INPUT : EXIT.USAGE, message: e.message };
  }
  if (e instanceof NixError) {
    switch (e.code) {
      case "NIX_COMMAND_FAILED":
      case "NIX_NOT_INSTALLED":
      case "NIX_DB_UNREADABLE":
      case "NIX_LOG_UNREADABLE":
        return { exit: EXIT.NIX, message: e.message };
      case "INVALID_STORE_PATH":
      case "NOT_IN_STORE":
      case "INVALID_BASE32":
      case "INVALID_HASH":
      case "MALFORMED_DERIVATION":
      case "UNSUPPORTED_DERIVATION":
      case "NOT_BUILT":
      case "NOT_VALID":
      case "NAR_UNSUPPORTED_FILE":
      case "INVALID_NARINFO":
        return { exit: EXIT.INPUT, message: e.message };
    }
  }
  if (e instanceof SignError) {
    const exit =
      e.code === "MALFORMED_BUNDLE" || e.code === "MALFORMED_TRUST_ROOT"
        ? EXIT.INPUT
        : e.code === "SIGNING_SERVICE"
          ? EXIT.REGISTRY
          : EXIT.KEY;
    return { exit, message: e.message };
  }
  if (e instanceof ChainsError) return { exit: EXIT.USAGE, message: e.message };
  if (e instanceof VulnError) {
    return { exit: e.code === "DATABASE" ? EXIT.STORE : EXIT.INPUT, message: e.message };
  }
  if (e instanceof PolicyError) return { exit: EXIT.USAGE, message: e.message };
  if (e instanceof OciError) {
    switch (e.code) {
      case "BAD_REFERENCE":
        return { exit: EXIT.USAGE, message: e.message };
      case "MALFORMED_ARCHIVE":
      case "NOT_AN_IMAGE":
        return { exit: EXIT.INPUT, message: e.message };
      case "DENIED":
      case "DIGEST_MISMATCH":
      case "NOT_FOUND":
      case "REGISTRY":
      case "SERVER":
      case "TOO_LARGE":
      case "UNAUTHORIZED":
      case "UNREACHABLE":
        return { exit: EXIT.REGISTRY, message: e.message };
    }
  }
  if (e instanceof CacheError) {
    return { exit: e.code === "BAD_URL" ? EXIT.USAGE : EXIT.REGISTRY, message: e.message };
  }
  if (e instanceof StoreError) return { exit: EXIT.STORE, message: e.message };
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (code === "ENOSPC") return { exit: EXIT.STORE, message: "no space left on device" };
  const detail = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  return {
    exit: EXIT.INTERNAL,
    message: `internal error (this is a bug in provenix; please report it with the command you ran): ${detail}`,
  };
}
