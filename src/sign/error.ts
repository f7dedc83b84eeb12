import { CodedError } from "../error.js";

export type SignErrorCode =
  | "MALFORMED_KEY"
  | "UNSUPPORTED_KEY"
  | "KEY_MISMATCH"
  | "KEY_FILE_INSECURE"
  | "KEY_FILE_UNREADABLE"
  | "MALFORMED_BUNDLE"
  /** No OIDC identity token for keyless signing, or one that is not a JWT. */
  | "IDENTITY_TOKEN"
  /** Fulcio, Rekor or a timestamp authority failed, refused or did not answer. */
  | "SIGNING_SERVICE"
  /** A trusted_root.json or signing config that is not what the Sigstore specs say. */
  | "MALFORMED_TRUST_ROOT";

export class SignError extends CodedError<SignErrorCode> {}
