export type StoreErrorCode =
  | "CORRUPT"
  | "FOREIGN"
  | "NEWER_SCHEMA"
  | "UNWRITABLE"
  | "BUSY"
  | "FULL";

export class StoreError extends Error {
  readonly code: StoreErrorCode;
  constructor(code: StoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "StoreError";
    this.code = code;
  }
}
