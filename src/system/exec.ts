import { execFile } from "node:child_process";
import { NixError } from "../nix/index.js";

export interface ExecResult {
  readonly stdout: string;
  readonly stderr: string;
}

/** The `error: ...` line Nix prints, or the last line of stderr. */
export function nixErrorLine(stderr: string): string {
  const lines = stderr
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "");
  const error = lines.find((l) => l.startsWith("error:"));
  return error ?? lines.at(-1) ?? "no error output";
}

/** The first word of a Nix command line that names what it does (`eval`, `--realise`). */
function subcommand(args: readonly string[]): string {
  const shown = args.filter(
    (a, i) =>
      a !== "--extra-experimental-features" && args[i - 1] !== "--extra-experimental-features",
  );
  return shown[0] ?? "";
}

/** Run a Nix program; failures become one-line NixErrors. */
export function runNix(
  program: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; input?: string } = {},
): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      program,
      args,
      { maxBuffer: 1 << 30, env: options.env ?? process.env, encoding: "utf8" },
      (error, stdout, stderr) => {
        if (error) {
          const code = (error as NodeJS.ErrnoException).code;
          if (code === "ENOENT") {
            reject(
              new NixError(
                "NIX_NOT_INSTALLED",
                `'${program}' was not found on PATH; install Nix (Debian: apt-get install nix-bin)`,
              ),
            );
          } else {
            reject(
              new NixError(
                "NIX_COMMAND_FAILED",
                `${[program, subcommand(args)].join(" ").trim()} failed: ${nixErrorLine(stderr)}`,
                { cause: error },
              ),
            );
          }
          return;
        }
        resolve({ stdout, stderr });
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/** `nix` with the nix-command feature on, as Nix 2.8 requires for the new CLI. */
export function runNixCommand(args: readonly string[]): Promise<ExecResult> {
  return runNix("nix", ["--extra-experimental-features", "nix-command", ...args]);
}
