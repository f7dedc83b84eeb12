import { spawn, spawnSync } from "node:child_process";
import { join } from "node:path";
import { ROOT, tempDir } from "./nix.js";

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** A fresh provenix home: its own config and data directories. */
export function cliHome(): NodeJS.ProcessEnv {
  const home = tempDir("provenix-home-");
  return {
    ...process.env,
    XDG_CONFIG_HOME: join(home, "config"),
    XDG_DATA_HOME: join(home, "data"),
    PROVENIX_KEY: "",
    PROVENIX_STORE: "",
  };
}

export function clean(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out = { ...env };
  for (const k of ["PROVENIX_KEY", "PROVENIX_STORE", "PROVENIX_CONFIG"])
    if (out[k] === "") delete out[k];
  return out;
}

export function provenix(args: string[], env: NodeJS.ProcessEnv, cwd?: string): CliResult {
  const r = spawnSync(process.execPath, [join(ROOT, "bin", "provenix.js"), ...args], {
    env: clean(env),
    encoding: "utf8",
    maxBuffer: 1 << 28,
    ...(cwd ? { cwd } : {}),
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Without blocking this process: servers that a test runs here keep answering meanwhile. */
export function provenixAsync(
  args: string[],
  env: NodeJS.ProcessEnv,
  stdin = "",
): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(ROOT, "bin", "provenix.js"), ...args], {
      env: clean(env),
    });
    child.stdin.end(stdin);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** A one-line error: "provenix: ..." and no stack trace. */
export function isOneLineError(r: CliResult): boolean {
  const lines = r.stderr.split("\n").filter((l) => l !== "");
  return lines.length === 1 && lines[0]!.startsWith("provenix: ") && !/\n\s+at /.test(r.stderr);
}
