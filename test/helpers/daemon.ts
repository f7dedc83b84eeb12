// Run `provenix daemon` as a real process; its JSON-lines log goes to a file.
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { AttestationStore, type JournalStats } from "../../src/store/index.js";
import { clean } from "./cli.js";
import { ROOT, tempDir } from "./nix.js";

export const BUILDER = "https://ci.example.org/builders/provenix-test";

export interface LogEvent {
  ts: string;
  event: string;
  level: string;
  [k: string]: unknown;
}

export class Daemon {
  readonly log: string;
  private readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  private constructor(
    readonly child: ChildProcess,
    log: string,
  ) {
    this.log = log;
    this.exited = new Promise((resolve) =>
      child.on("exit", (code, signal) => resolve({ code, signal })),
    );
  }

  /** Start a daemon; it is killed when the test ends, whatever the outcome. */
  static start(
    t: { after(fn: () => unknown): void },
    args: string[],
    env: NodeJS.ProcessEnv,
    log = join(tempDir(), "daemon.log"),
  ) {
    const fd = openSync(log, "a");
    const child = spawn(
      process.execPath,
      [join(ROOT, "bin", "provenix.js"), "daemon", "--builder-id", BUILDER, ...args],
      { env: clean(env), stdio: ["ignore", "ignore", fd] },
    );
    closeSync(fd);
    const d = new Daemon(child, log);
    t.after(() => d.stop("SIGKILL"));
    return d;
  }

  events(): LogEvent[] {
    return readFileSync(this.log, "utf8")
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => JSON.parse(l) as LogEvent);
  }

  async waitFor(pred: (e: LogEvent) => boolean, what: string, timeoutMs = 60_000) {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      const hit = this.events().find(pred);
      if (hit) return hit;
      if (this.child.exitCode !== null) break;
      await sleep(50);
    }
    throw new Error(
      `daemon: no ${what} within ${timeoutMs} ms; log:\n${readFileSync(this.log, "utf8").slice(-3000)}`,
    );
  }

  async stop(signal: NodeJS.Signals = "SIGTERM") {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exited;
  }

  wait() {
    return this.exited;
  }
}

export function journalStats(storePath: string, builderId = BUILDER): JournalStats {
  const store = AttestationStore.open(storePath);
  try {
    return store.journal.stats(builderId, Date.now());
  } finally {
    store.close();
  }
}

/** Wait until the journal holds `n` attested outputs and nothing pending. */
export async function waitAttested(storePath: string, n: number, timeoutMs = 180_000) {
  const end = Date.now() + timeoutMs;
  let s = journalStats(storePath);
  while (Date.now() < end) {
    s = journalStats(storePath);
    if (s.counts.attested >= n && s.counts.pending === 0) return s;
    await sleep(200);
  }
  throw new Error(`journal after ${timeoutMs} ms: ${JSON.stringify(s)}`);
}
