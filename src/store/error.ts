import { CodedError } from "../error.js";

export type StoreErrorCode =
  "CORRUPT" | "FOREIGN" | "NEWER_SCHEMA" | "UNWRITABLE" | "BUSY" | "FULL" | "IO" | "IN_USE";

export class StoreError extends CodedError<StoreErrorCode> {}
