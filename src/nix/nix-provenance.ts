// Nix's own provenance records (Determinate Nix 3.16+, setting `provenance`): where a
// store path came from, as a chain of steps linked by "next", kept in the Nix
// database (ValidPaths.provenance), `nix path-info --json` and narinfo files, and
// signed by no one. Shapes as in Determinate Nix's tests (tests/functional/flakes/
// provenance.sh) and docs: "build" (drv, output, buildHost, system, tags) ->
// "derivation" (meta) -> "flake" (flakeOutput, pure) -> "subpath" -> "tree" (attrs:
// the locked flake input), and "copied" (from) in front of a path substituted.

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === "object" && !Array.isArray(v);

/** What provenix takes from a record to state in its own terms; the record is kept whole too. */
export interface NixProvenanceSummary {
  /** The step types from the path back to its source, e.g. ["build", "derivation", "flake", "subpath", "tree"]. */
  readonly steps: readonly string[];
  /** The flake the build came from: its locked attributes and the output evaluated. */
  readonly flake?: {
    readonly attrs: Obj;
    readonly output?: string;
    readonly pure?: boolean;
    /** The locked flake reference: `<url>?rev=<rev>` (ref and other attributes in attrs). */
    readonly reference?: string;
  };
  readonly buildHost?: string;
  readonly tags?: Obj;
  /** Binary caches the path was copied from, nearest first. */
  readonly copiedFrom: readonly string[];
}

/** Walk a provenance chain. Unknown step types are listed and otherwise left alone. */
export function summarizeNixProvenance(record: unknown): NixProvenanceSummary | undefined {
  if (!isObj(record)) return undefined;
  const steps: string[] = [];
  const copiedFrom: string[] = [];
  let flake: { attrs: Obj; output?: string; pure?: boolean; reference?: string } | undefined;
  let flakeStep: Obj | undefined;
  let buildHost: string | undefined;
  let tags: Obj | undefined;
  const seen = new Set<Obj>();
  for (let step: unknown = record; isObj(step) && !seen.has(step); step = step.next) {
    seen.add(step);
    const type = typeof step.type === "string" ? step.type : "unknown";
    steps.push(type);
    switch (type) {
      case "copied":
        if (typeof step.from === "string") copiedFrom.push(step.from);
        break;
      case "build":
        if (typeof step.buildHost === "string") buildHost ??= step.buildHost;
        if (isObj(step.tags)) tags ??= step.tags;
        break;
      case "flake":
        flakeStep ??= step;
        break;
      case "tree":
        if (flakeStep && !flake && isObj(step.attrs)) {
          const attrs = step.attrs;
          const url = typeof attrs.url === "string" ? attrs.url : undefined;
          const rev = typeof attrs.rev === "string" ? attrs.rev : undefined;
          flake = {
            attrs,
            ...(typeof flakeStep.flakeOutput === "string" ? { output: flakeStep.flakeOutput } : {}),
            ...(typeof flakeStep.pure === "boolean" ? { pure: flakeStep.pure } : {}),
            ...(url ? { reference: rev ? `${url}?rev=${rev}` : url } : {}),
          };
        }
        break;
    }
  }
  return {
    steps,
    ...(flake ? { flake } : {}),
    ...(buildHost !== undefined ? { buildHost } : {}),
    ...(tags ? { tags } : {}),
    copiedFrom,
  };
}
