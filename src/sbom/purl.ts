import { createRequire } from "node:module";
import type * as Purl from "packageurl-js";
import type { SbomNode } from "./graph.js";

// packageurl-js loads on first use (SBOMs, vulnerability matching), not with every command.
const require = createRequire(import.meta.url);
let purl: typeof Purl | undefined;

/** The package URL (pkg:nix/name@version) of a component. */
export function packageUrl(node: Pick<SbomNode, "name" | "version">): string {
  purl ??= require("packageurl-js") as typeof Purl;
  return new purl.PackageURL(
    "nix",
    undefined,
    node.name,
    node.version === "" ? undefined : node.version,
    undefined,
    undefined,
  ).toString();
}
