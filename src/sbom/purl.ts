import { PackageURL } from "packageurl-js";
import type { SbomNode } from "./graph.js";

/** The package URL (pkg:nix/name@version) of a component. */
export function packageUrl(node: Pick<SbomNode, "name" | "version">): string {
  return new PackageURL(
    "nix",
    undefined,
    node.name,
    node.version === "" ? undefined : node.version,
    undefined,
    undefined,
  ).toString();
}
