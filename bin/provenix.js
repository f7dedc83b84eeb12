#!/usr/bin/env node
import { main } from "../dist/src/cli/main.js";

// `provenix ... | head`: a closed pipe ends the output, quietly, not with a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (e) => {
    if (e.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw e;
  });
}

process.exitCode = await main(process.argv.slice(2));
