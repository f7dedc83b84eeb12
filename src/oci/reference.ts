import { OciError } from "./error.js";

// Image references as Docker and the OCI distribution spec write them:
//   [oci://]host[:port]/path/name[:tag][@sha256:<64 hex>]

export interface ImageReference {
  /** host[:port] of the registry. */
  readonly registry: string;
  /** The repository (name) inside the registry. */
  readonly repository: string;
  readonly tag?: string;
  readonly digest?: string;
}

const DIGEST = /^sha256:[0-9a-f]{64}$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;

export function parseReference(text: string): ImageReference {
  let rest = text.replace(/^oci:\/\//, "");
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest))
      throw new OciError("BAD_REFERENCE", `'${text}': '${digest}' is not a sha256 digest`);
  }
  const slash = rest.indexOf("/");
  if (slash < 0)
    throw new OciError(
      "BAD_REFERENCE",
      `'${text}' names no registry: use host[:port]/repository[:tag]`,
    );
  const registry = rest.slice(0, slash);
  let repository = rest.slice(slash + 1);
  let tag: string | undefined;
  const colon = repository.lastIndexOf(":");
  if (colon >= 0) {
    tag = repository.slice(colon + 1);
    repository = repository.slice(0, colon);
    if (!TAG.test(tag))
      throw new OciError("BAD_REFERENCE", `'${text}': '${tag}' is not a valid tag`);
  }
  if (
    !/^[a-zA-Z0-9.-]+(:\d+)?$/.test(registry) ||
    !repository.split("/").every((c) => PATH_COMPONENT.test(c))
  ) {
    throw new OciError(
      "BAD_REFERENCE",
      `'${text}' is not a valid image reference (host[:port]/lowercase/path[:tag][@sha256:...])`,
    );
  }
  return {
    registry,
    repository,
    ...(tag !== undefined ? { tag } : {}),
    ...(digest !== undefined ? { digest } : {}),
  };
}

export function formatReference(r: ImageReference): string {
  return `${r.registry}/${r.repository}${r.tag !== undefined ? `:${r.tag}` : ""}${r.digest !== undefined ? `@${r.digest}` : ""}`;
}
