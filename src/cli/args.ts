import type { FlakeSource } from "../attest/index.js";
import { classifyTarget, derivationOf, instantiate, realise } from "../system/targets.js";
import type { Invocation } from "./command.js";
import type { Context } from "./context.js";
import { CliError } from "./errors.js";

// Argument helpers shared by the commands.

export function strings(v: unknown): string[] {
  return Array.isArray(v)
    ? v.filter((x): x is string => typeof x === "string")
    : typeof v === "string"
      ? [v]
      : [];
}

/** Trusted keys from --key, --trusted-key, the config file and (unless --no-nix-keys) Nix. */
export function trustedKeysFrom(ctx: Context, inv: Invocation) {
  return ctx.trustedKeys({
    keyFiles: strings(inv.values.key),
    keyTexts: strings(inv.values["trusted-key"]),
    nixKeys: inv.values["no-nix-keys"] !== true,
  });
}

export function needTargets(inv: Invocation, what: string): string[] {
  if (inv.positionals.length === 0) throw new CliError("USAGE", `missing ${what} (see --help)`);
  return inv.positionals;
}

export function printJson(inv: Invocation, value: unknown): void {
  inv.io.out(JSON.stringify(value, null, 2) + "\n");
}

/** The derivations an argument stands for, built first with --build. */
export async function derivationsFor(
  ctx: Context,
  arg: string,
  opts: { build: boolean; attribute?: string },
): Promise<{ drvPath: string; outputs?: string[]; installable?: string; flake?: FlakeSource }[]> {
  const t = classifyTarget(arg, ctx.nix.storeDir);
  switch (t.kind) {
    case "output": {
      // Every output of the derivation that built it which is still in the store.
      const drvPath = await derivationOf(ctx.nix, t.path);
      return [{ drvPath, outputs: [...(await ctx.nix.derivationOutputs(drvPath)).keys()] }];
    }
    case "derivation":
      if (opts.build) await realise([t.drvPath]);
      return [{ drvPath: t.drvPath }];
    case "installable": {
      const { drvPaths, flake } = await instantiate(t.installable, opts.attribute);
      if (opts.build) await realise(drvPaths);
      return drvPaths.map((drvPath) => ({
        drvPath,
        installable: t.installable,
        ...(flake ? { flake } : {}),
      }));
    }
    case "bundle":
      throw new CliError(
        "INPUT",
        `${arg} is a bundle file; attest takes a build output, a .drv or an installable`,
      );
  }
}
