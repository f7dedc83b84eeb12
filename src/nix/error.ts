import { CodedError } from "../error.js";

export type NixErrorCode =
  | "INVALID_STORE_PATH"
  | "NOT_IN_STORE"
  | "INVALID_BASE32"
  | "INVALID_HASH"
  | "MALFORMED_DERIVATION"
  | "UNSUPPORTED_DERIVATION"
  | "NOT_BUILT"
  | "NOT_VALID"
  | "NAR_UNSUPPORTED_FILE"
  | "NIX_COMMAND_FAILED"
  | "NIX_NOT_INSTALLED"
  | "NIX_DB_UNREADABLE"
  | "NIX_LOG_UNREADABLE"
  | "INVALID_NARINFO";

/** The one error type of the Nix domain; `code` is what callers branch on. */
export class NixError extends CodedError<NixErrorCode> {}
