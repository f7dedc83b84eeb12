import { CodedError } from "../error.js";

export type OciErrorCode =
  | "BAD_REFERENCE"
  | "MALFORMED_ARCHIVE"
  | "NOT_AN_IMAGE"
  | "DIGEST_MISMATCH"
  | "TOO_LARGE"
  | "REGISTRY"
  | "SERVER"
  | "UNAUTHORIZED"
  | "DENIED"
  | "NOT_FOUND"
  | "UNREACHABLE";

/** The one error type of OCI images and registries. */
export class OciError extends CodedError<OciErrorCode> {}
