import type { ParseArgsConfig } from "node:util";
import type { Context } from "./context.js";
import type { Io } from "./main.js";

// What every command module exports: a Command (its summary is in the registry,
// commands.ts, so that listing the commands loads none of them).

export interface Invocation {
  values: Record<string, unknown>;
  positionals: string[];
  json: boolean;
  io: Io;
}

export interface Command {
  usage: string;
  help: string;
  options: ParseArgsConfig["options"];
  /** `--key` names the signing key (attest) rather than a trusted public key (verify). */
  keyIsSigningKey?: boolean;
  /** `--builder-id` sets the builder we attest as (attest) rather than expectations (verify). */
  builderIdIsOwn?: boolean;
  /** Options whose value may be left out: `--closure` alone means `--closure build`. */
  optionalValues?: Record<string, { default: string; choices: readonly string[] }>;
  run(ctx: Context, inv: Invocation): Promise<number> | number;
}
