export type SignErrorCode =
  | "MALFORMED_KEY"
  | "UNSUPPORTED_KEY"
  | "KEY_MISMATCH"
  | "KEY_FILE_INSECURE"
  | "KEY_FILE_UNREADABLE"
  | "MALFORMED_BUNDLE";

export class SignError extends Error {
  readonly code: SignErrorCode;
  constructor(code: SignErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "SignError";
    this.code = code;
  }
}
