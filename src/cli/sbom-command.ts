import { closeSync, openSync, readFileSync, renameSync, rmSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { writeSbom, type SbomFormat } from "../app/sbom.js";
import { NixError } from "../nix/index.js";
import {
  metaLookup,
  packageMeta,
  type ClosureKind,
  type CycloneDxVersion,
  type PackageMeta,
  type SbomNode,
  type SbomRoots,
  type Sink,
} from "../sbom/index.js";
import { runNix } from "../system/exec.js";
import { classifyTarget, derivationOf, instantiate, realise } from "../system/targets.js";
import { VERSION } from "../version.js";
import type { Command } from "./command.js";
import type { Context } from "./context.js";
import { CliError, EXIT } from "./errors.js";

export interface SbomChoices {
  format: SbomFormat;
  closure: ClosureKind;
  cyclonedxVersion?: CycloneDxVersion;
}

/** Validate --format / --closure / --spec values. */
export function sbomChoices(values: Record<string, unknown>, formatFlag: string): SbomChoices {
  const format = (values[formatFlag] as string | undefined) ?? "cyclonedx";
  if (format !== "cyclonedx" && format !== "spdx") {
    throw new CliError("USAGE", `unknown SBOM format '${format}': use cyclonedx or spdx`);
  }
  const closure = (values.closure as string | undefined) ?? "runtime";
  if (closure !== "runtime" && closure !== "build" && closure !== "both") {
    throw new CliError("USAGE", `unknown closure '${closure}': use runtime, build or both`);
  }
  const spec = values.spec as string | undefined;
  if (spec !== undefined && (format !== "cyclonedx" || !["1.5", "1.6", "1.7"].includes(spec))) {
    throw new CliError("USAGE", `--spec takes 1.5, 1.6 or 1.7, and only with CycloneDX`);
  }
  return { format, closure, ...(spec ? { cyclonedxVersion: spec as CycloneDxVersion } : {}) };
}

/** The roots of an SBOM for a command-line target, and the installable's meta if any. */
export async function sbomRoots(
  ctx: Context,
  arg: string,
  opts: { build: boolean; attribute?: string },
): Promise<SbomRoots & { installable?: string }> {
  const t = classifyTarget(arg, ctx.nix.storeDir);
  switch (t.kind) {
    case "output": {
      let derivations: string[] = [];
      try {
        derivations = [await derivationOf(ctx.nix, t.path)];
      } catch (e) {
        if (!(e instanceof NixError && (e.code === "NOT_BUILT" || e.code === "NOT_VALID"))) throw e;
      }
      return { outputs: [t.path], derivations };
    }
    case "derivation": {
      if (opts.build) await realise([t.drvPath]);
      return {
        outputs: [...(await ctx.nix.derivationOutputs(t.drvPath)).values()],
        derivations: [t.drvPath],
      };
    }
    case "installable": {
      const { drvPaths } = await instantiate(t.installable, opts.attribute);
      if (opts.build) await realise(drvPaths);
      const outputs: string[] = [];
      for (const d of drvPaths) outputs.push(...(await ctx.nix.derivationOutputs(d)).values());
      return { outputs, derivations: drvPaths, installable: t.installable };
    }
    case "bundle":
      throw new CliError("INPUT", `${arg} is a bundle file, not a build output or derivation`);
  }
}

/** `meta` of an installable, from `nix eval --json`; undefined when it has none. */
async function installableMeta(
  installable: string,
  attribute?: string,
): Promise<PackageMeta | undefined> {
  const expr =
    attribute !== undefined
      ? ["-f", installable, `${attribute}.meta`]
      : ["-f", installable, "meta"];
  const isFile = !/[#:]/.test(installable) || installable.startsWith("/");
  const args = isFile
    ? expr
    : [attribute !== undefined ? `${installable}.${attribute}.meta` : `${installable}.meta`];
  try {
    const { stdout } = await runNix("nix", [
      "--extra-experimental-features",
      "nix-command flakes",
      "eval",
      "--json",
      ...args,
    ]);
    return packageMeta(JSON.parse(stdout));
  } catch (e) {
    if (e instanceof NixError && e.code === "NIX_COMMAND_FAILED") return undefined;
    throw e;
  }
}

function readMetaFile(path: string): (node: SbomNode) => PackageMeta | undefined {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new CliError("INPUT", `metadata file ${path}: ${(e as Error).message}`);
  }
  return metaLookup(json);
}

function parseTimestamp(v: unknown): Date | undefined {
  if (typeof v !== "string") return undefined;
  const d = new Date(v);
  if (Number.isNaN(d.getTime()))
    throw new CliError("USAGE", `--timestamp '${v}' is not an RFC 3339 time`);
  return d;
}

/** Everything `sbom` and `attest --sbom` need to make one document, written to `sink`. */
export async function sbomFor(
  ctx: Context,
  arg: string,
  values: Record<string, unknown>,
  choices: SbomChoices,
  sink: Sink,
): Promise<SbomRoots> {
  const attribute = typeof values.attr === "string" ? values.attr : undefined;
  const roots = await sbomRoots(ctx, arg, {
    build: values.build === true,
    ...(attribute ? { attribute } : {}),
  });
  if (choices.closure !== "build" && roots.outputs.length === 0) {
    throw new NixError(
      "NOT_BUILT",
      `${arg} is not built: a runtime SBOM needs its outputs (build it, or use --build)`,
    );
  }
  if (choices.closure !== "runtime" && roots.derivations.length === 0) {
    throw new NixError("NOT_VALID", `${arg} has no derivation available for a build-closure SBOM`);
  }
  const timestamp = parseTimestamp(values.timestamp);
  await writeSbom(
    ctx.nix,
    roots,
    {
      ...choices,
      toolVersion: VERSION,
      ...(timestamp ? { timestamp } : {}),
      meta: await metaFor(roots, values.meta, attribute),
    },
    sink,
  );
  return roots;
}

/**
 * Package metadata for the nodes of a closure: from a `--meta` file (as
 * 'nix-env -qa --meta --json' writes it), and for an installable's roots its own
 * meta, from 'nix eval'.
 */
export async function metaFor(
  roots: SbomRoots & { installable?: string },
  metaFile: unknown,
  attribute?: string,
): Promise<(n: SbomNode) => PackageMeta | undefined> {
  const fromFile = typeof metaFile === "string" ? readMetaFile(metaFile) : undefined;
  const rootMeta = roots.installable
    ? await installableMeta(roots.installable, attribute)
    : undefined;
  const rootIds = new Set([...roots.outputs, ...roots.derivations]);
  return (n) =>
    fromFile?.(n) ?? (rootIds.has(n.id) || rootIds.has(n.drvPath ?? "") ? rootMeta : undefined);
}

/** A file-system error writing `out` is a usage error (disk full keeps its own exit); others pass. */
function outputError(e: unknown, out: string): unknown {
  const errno = e as NodeJS.ErrnoException;
  if (!(e instanceof Error) || errno.syscall === undefined || errno.code === "ENOSPC") return e;
  return new CliError("USAGE", `cannot write ${out}: ${errno.code}`);
}

export const sbomCommand: Command = {
  usage: "Usage: provenix sbom [options] <./result | store path | .drv | installable>",
  help: `Describes every store path in the closure as a component: name and version
(pname/version, else split like builtins.parseDrvName), a pkg:nix package URL,
the NAR sha256, the derivation and outputs, fixed-output sources with their URLs
and declared hashes, and the dependencies between components. Output is
deterministic: sorted, and without timestamps unless --timestamp is given (SPDX
requires a creation time: the roots' registration time is used).

Closures:
  runtime   the outputs and everything they reference (nix-store -qR <output>)
  build     every derivation and source needed to build it (nix-store -qR <drv>)
  both      the union, with each output depending on its derivation

Options:
  --format FORMAT    cyclonedx (default, JSON 1.6) or spdx (JSON 2.3)
  --spec VERSION     CycloneDX version: 1.5, 1.6 (default) or 1.7
  --closure KIND     runtime (default), build or both
  --meta FILE        package metadata, as 'nix-env -qa --meta --json' writes it;
                     an installable's own meta is read with 'nix eval'; absent
                     metadata is marked unavailable, never invented
  --build            build the target first
  -A, --attr ATTR    attribute of a .nix installable
  --timestamp TIME   record this creation time
  -o, --out FILE     write to FILE instead of stdout`,
  options: {
    format: { type: "string" },
    spec: { type: "string" },
    closure: { type: "string" },
    meta: { type: "string" },
    build: { type: "boolean" },
    attr: { type: "string", short: "A" },
    timestamp: { type: "string" },
    out: { type: "string", short: "o" },
  },
  async run(ctx, inv) {
    const [arg, ...extra] = inv.positionals;
    if (arg === undefined || extra.length > 0)
      throw new CliError("USAGE", "sbom takes exactly one target (see --help)");
    const choices = sbomChoices(inv.values, "format");
    const out = inv.values.out;
    if (typeof out !== "string") {
      await sbomFor(ctx, arg, inv.values, choices, (t) => inv.io.out(t));
      return EXIT.OK;
    }
    // Written beside the target and renamed into place: never a half-written file.
    const temporary = join(dirname(out), `.${basename(out)}.${process.pid}.tmp`);
    let fd: number;
    try {
      fd = openSync(temporary, "wx", 0o644);
    } catch (e) {
      throw outputError(e, out);
    }
    try {
      try {
        await sbomFor(ctx, arg, inv.values, choices, (t) => writeSync(fd, t));
      } finally {
        closeSync(fd);
      }
      renameSync(temporary, out);
    } catch (e) {
      rmSync(temporary, { force: true });
      throw outputError(e, out);
    }
    if (inv.json) inv.io.out(JSON.stringify({ written: out }) + "\n");
    return EXIT.OK;
  },
};
