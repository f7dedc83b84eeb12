#!/usr/bin/env node
import { existsSync } from "node:fs";
import module from "node:module";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import v8 from "node:v8";
import { makeDirs } from "../dist/src/system/make-dirs.js";

// provenix needs Node.js >= 24.15. Started by an older node (Debian's, say), it runs
// itself on the Node the project's setup put in .tools/node instead.
const [major, minor] = process.versions.node.split(".").map(Number);
if (major < 24 || (major === 24 && minor < 15)) {
  const projectNode = fileURLToPath(new URL("../.tools/node/bin/node", import.meta.url));
  if (!existsSync(projectNode)) {
    process.stderr.write(
      `provenix: needs Node.js >= 24.15, this is ${process.version}; run ./scripts/setup.sh, which installs it into .tools/node\n`,
    );
    process.exit(2);
  }
  // Imported here only: loading node:child_process costs every other run 3 ms.
  const { spawn } = await import("node:child_process");
  const child = spawn(projectNode, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: "inherit",
  });
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
    process.on(signal, () => child.kill(signal));
  }
  child.on("exit", (code, signal) => {
    if (signal) {
      process.removeAllListeners(signal);
      process.kill(process.pid, signal);
    }
    process.exit(code ?? 70);
  });
} else {
  // V8 grows its young generation up to 2 x 64 MiB on a machine with plenty of
  // memory, which is most of the peak memory of a streaming SBOM of 50,000
  // derivations or of a daemon under a burst, and buys them no speed: kept at its
  // starting size, that SBOM peaks at under 200 MiB instead of 420. attest and
  // verify of a farm's batch hold hundreds of MB for seconds, and there a small
  // young generation is collected over and over: attest of 50,000 derivations
  // scavenged 1,143 times instead of 71, 18.1 s instead of 16.4 (bench/README.md).
  if (!["attest", "verify"].includes(process.argv[2] ?? "")) {
    v8.setFlagsFromString("--semi-space-growth-factor=1");
  }
  // V8's compiled code of provenix's modules is kept between runs (Node checks each
  // entry against its source): a tenth of a short command's time. In the user's own
  // cache directory, not a shared /tmp where another user could plant entries.
  const cache = compileCacheDir();
  if (cache) module.enableCompileCache?.(cache);
  const { main } = await import("../dist/src/cli/main.js");

  // `provenix ... | head`: a closed pipe ends the output, quietly, not with a stack trace.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on("error", (e) => {
      if (e.code === "EPIPE") process.exit(process.exitCode ?? 0);
      throw e;
    });
  }

  process.exitCode = await main(process.argv.slice(2));
}

/**
 * $XDG_CACHE_HOME/provenix/v8 (default ~/.cache), or nothing where it cannot be
 * made. Made by makeDirs, not by the recursive mkdir enableCompileCache would use,
 * which spins forever in a home under /proc.
 */
function compileCacheDir() {
  const base =
    process.env.XDG_CACHE_HOME || (process.env.HOME ? join(process.env.HOME, ".cache") : "");
  if (!base.startsWith("/")) return undefined;
  const dir = join(base, "provenix", "v8");
  try {
    makeDirs(dir, 0o700);
    return dir;
  } catch {
    return undefined;
  }
}
