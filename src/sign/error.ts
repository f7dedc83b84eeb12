import { CodedError } from "../error.js";

export type SignErrorCode =
  | "MALFORMED_KEY"
  | "UNSUPPORTED_KEY"
  | "KEY_MISMATCH"
  | "KEY_FILE_INSECURE"
  | "KEY_FILE_UNREADABLE"
  | "MALFORMED_BUNDLE";

export class SignError extends CodedError<SignErrorCode> {}
