import { VERSION } from "../version.js";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { loadConfig } from "./config.js";
import { Context } from "./context.js";
import { CliError, describeError, EXIT, EXIT_CODE_HELP } from "./errors.js";
import { COMMANDS } from "./commands.js";

const GLOBAL_HELP = `provenix ${VERSION}: signed SLSA provenance for Nix builds

Usage: provenix <command> [options]

Commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(9)} ${c.summary}`)
  .join("\n")}

Global options:
  --store PATH       attestation store (SQLite); env PROVENIX_STORE;
                     default $XDG_DATA_HOME/provenix/attestations.db
  --config PATH      config file; env PROVENIX_CONFIG;
                     default $XDG_CONFIG_HOME/provenix/config.json
  --json             machine-readable output on stdout
  -h, --help         help for provenix or a command
  --version          print the version

Run 'provenix <command> --help' for a command's options.

${EXIT_CODE_HELP}
`;

export const GLOBAL_OPTIONS = {
  store: { type: "string" },
  config: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const satisfies ParseArgsConfig["options"];

export interface Io {
  out(text: string): void;
  err(text: string): void;
}

const processIo: Io = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
};

/** Run provenix with `argv` (without node and script); returns the exit code. */
export async function main(argv: string[], io: Io = processIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    io.out(GLOBAL_HELP);
    return name === undefined ? EXIT.USAGE : EXIT.OK;
  }
  if (name === "--version") {
    io.out(VERSION + "\n");
    return EXIT.OK;
  }
  const entry = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  let ctx: Context | undefined;
  try {
    if (!entry) throw new CliError("USAGE", `unknown command '${name}' (see provenix --help)`);
    const command = await entry.load();
    let parsed;
    try {
      parsed = parseArgs({
        args: withOptionalValues(rest, command.optionalValues ?? {}),
        options: { ...GLOBAL_OPTIONS, ...command.options },
        allowPositionals: true,
        strict: true,
      });
    } catch (e) {
      throw new CliError(
        "USAGE",
        `${(e as Error).message.split("\n")[0] ?? "bad arguments"} (see provenix ${name} --help)`,
      );
    }
    const values = parsed.values as Record<string, unknown>;
    if (values.help) {
      io.out(`${command.usage}\n\n${entry.summary}\n\n${command.help}\n`);
      return EXIT.OK;
    }
    const config = loadConfig({
      ...(typeof values.store === "string" ? { store: values.store } : {}),
      ...(typeof values.config === "string" ? { config: values.config } : {}),
      ...(typeof values.key === "string" && command.keyIsSigningKey ? { key: values.key } : {}),
      ...(typeof values["builder-id"] === "string" && command.builderIdIsOwn
        ? { builderId: values["builder-id"] }
        : {}),
    });
    ctx = new Context(config);
    return await command.run(ctx, {
      values,
      positionals: parsed.positionals,
      json: values.json === true,
      io,
    });
  } catch (e) {
    const { exit, message } = describeError(e);
    if (wantsJson(argv)) io.out(JSON.stringify({ error: { message, exit } }) + "\n");
    io.err(`provenix: ${message}\n`);
    if (exit === EXIT.INTERNAL && process.env.PROVENIX_DEBUG)
      io.err(`${(e as Error).stack ?? ""}\n`);
    return exit;
  } finally {
    ctx?.close();
  }
}

/** `--opt` given without one of its choices gets its default value (parseArgs needs one). */
function withOptionalValues(
  args: readonly string[],
  optional: Record<string, { default: string; choices: readonly string[] }>,
): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? "";
    out.push(a);
    const o = a.startsWith("--") ? optional[a.slice(2)] : undefined;
    if (o && !o.choices.includes(args[i + 1] ?? "")) out.push(o.default);
  }
  return out;
}

function wantsJson(argv: string[]): boolean {
  return argv.includes("--json");
}
