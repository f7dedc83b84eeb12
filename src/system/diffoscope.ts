import { execFile } from "node:child_process";

export type DiffoscopeResult =
  | { readonly available: false }
  | { readonly available: true; readonly ok: true; readonly text: Buffer; readonly version: string }
  | { readonly available: true; readonly ok: false; readonly error: string };

function run(args: string[], timeoutMs: number) {
  return new Promise<{ code: number | null; stdout: Buffer; stderr: string; missing: boolean }>(
    (resolve) => {
      execFile(
        "diffoscope",
        args,
        {
          encoding: "buffer",
          maxBuffer: 1 << 28,
          timeout: timeoutMs,
          env: { ...process.env, LC_ALL: "C.UTF-8" },
        },
        (error, stdout, stderr) => {
          const code = (error as NodeJS.ErrnoException | null)?.code;
          resolve({
            code: error ? (typeof code === "number" ? code : null) : 0,
            stdout,
            stderr: stderr.toString("utf8"),
            missing: code === "ENOENT",
          });
        },
      );
    },
  );
}

/**
 * diffoscope's text report on two trees, when Debian's diffoscope is installed.
 * It exits 1 when it found differences, which is what we expect here.
 */
export async function diffoscope(
  a: string,
  b: string,
  timeoutMs: number,
): Promise<DiffoscopeResult> {
  const version = await run(["--version"], 30_000);
  if (version.missing) return { available: false };
  const r = await run(
    ["--no-progress", "--exclude-directory-metadata=yes", "--text", "-", a, b],
    timeoutMs,
  );
  if (r.code === 0 || r.code === 1) {
    return { available: true, ok: true, text: r.stdout, version: version.stdout.toString().trim() };
  }
  const why = r.code === null ? `timed out after ${timeoutMs} ms` : `exit ${r.code}`;
  const last = r.stderr.trim().split("\n").at(-1) ?? "";
  return {
    available: true,
    ok: false,
    error: `diffoscope failed (${why})${last ? `: ${last}` : ""}`,
  };
}
