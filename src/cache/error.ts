import { CodedError } from "../error.js";

export type CacheErrorCode =
  /** An index or bundle in the cache is not what layout v1 says. */
  | "MALFORMED"
  /** The cache answered with an error status. */
  | "SERVER"
  /** The cache URL is not one provenix speaks (file://, http://, https://). */
  | "BAD_URL"
  /** No answer in time, or no connection. */
  | "UNREACHABLE"
  /** The cache refused a write, or a file could not be written. */
  | "WRITE_FAILED";

/** The one error type of binary caches. */
export class CacheError extends CodedError<CacheErrorCode> {}
