import { CodedError } from "../error.js";

export type ChainsErrorCode = "HOOK_CONFLICT" | "BAD_SPOOL_RECORD";

export class ChainsError extends CodedError<ChainsErrorCode> {}
