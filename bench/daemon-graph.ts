// Benchmark: what chains mode costs a builder. Builds a fresh n-derivation graph
// (new seed each run, substituters off) with no observation, with
// `provenix daemon` watching the Nix database, with an empty post-build-hook and
// with provenix's hook (daemon in hook mode), and prints the ratios; then the
// time from registration to attestation (p50, p99) and the sustained rate.
//   node dist/bench/daemon-graph.js [--n 2000] [--runs 1] [--only none,daemon]
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { hookScript } from "../src/chains/index.js";
import { AttestationStore } from "../src/store/index.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const GRAPH = join(ROOT, "..", "shared", "bench", "graph.nix");
const BIN = join(ROOT, "bin", "provenix.js");
const BUILDER = "https://provenix.dev/bench";
const { values } = parseArgs({
  options: {
    n: { type: "string", default: "2000" },
    runs: { type: "string", default: "1" },
    only: { type: "string" },
  },
});
const n = Number(values.n);
const runs = Number(values.runs);

const work = mkdtempSync(join(tmpdir(), "provenix-bench-daemon-"));
const baseConf = "substituters =\nsandbox = false\nexperimental-features = nix-command\n";

function confDir(name: string, extra = ""): string {
  const dir = join(work, name);
  spawnSync("mkdir", ["-p", dir]);
  writeFileSync(join(dir, "nix.conf"), baseConf + extra);
  return dir;
}

const env = (name: string) => ({
  ...process.env,
  XDG_CONFIG_HOME: join(work, name, "config"),
  XDG_DATA_HOME: join(work, name, "data"),
  NIX_CONF_DIR: confDir(`${name}-nixconf`),
});

function must(r: ReturnType<typeof spawnSync>, what: string): void {
  if (r.status !== 0) throw new Error(`${what} failed: ${String(r.stderr)}`);
}

/** Wall time of building a fresh graph, seconds; returns the top output. */
function buildGraph(nixConfDir: string): { seconds: number; top: string } {
  const seed = String(Math.floor(Math.random() * 1e9));
  const t0 = process.hrtime.bigint();
  const r = spawnSync(
    "nix-build",
    [GRAPH, "--arg", "n", String(n), "--arg", "seed", seed, "--no-out-link", "-j", "4"],
    { env: { ...process.env, NIX_CONF_DIR: nixConfDir }, encoding: "utf8", maxBuffer: 1 << 28 },
  );
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  must(r, "nix-build");
  return { seconds, top: r.stdout.trim() };
}

function startDaemon(e: NodeJS.ProcessEnv, args: string[]): ChildProcess {
  const log = openSync(join(work, `daemon-${Date.now()}.log`), "a");
  const child = spawn(
    process.execPath,
    [BIN, "daemon", "--builder-id", BUILDER, "--quiet", "--no-gc-roots", ...args],
    {
      env: e,
      stdio: ["ignore", "ignore", log],
    },
  );
  closeSync(log);
  return child;
}

/** CPU seconds (user + system) a live process has used, from /proc (clock ticks of 1/100 s). */
function cpuSeconds(pid: number | undefined): number {
  const stat = readFileSync(`/proc/${pid ?? 0}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Peak resident memory of a process so far (VmHWM), in MiB. */
function peakRssMiB(pid: number | undefined): number {
  const status = readFileSync(`/proc/${pid ?? 0}/status`, "utf8");
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) / 1024;
}

function keygen(e: NodeJS.ProcessEnv): void {
  must(spawnSync(process.execPath, [BIN, "keygen"], { env: e }), "keygen");
}

function storeOf(e: NodeJS.ProcessEnv): string {
  return join(e.XDG_DATA_HOME!, "provenix", "attestations.db");
}

async function waitAttested(store: string, count: number): Promise<void> {
  for (;;) {
    const s = AttestationStore.open(store);
    const st = s.journal.stats(BUILDER, Date.now());
    s.close();
    if (st.counts.attested >= count && st.counts.pending === 0) return;
    await sleep(200);
  }
}

async function started(store: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try {
      const s = AttestationStore.open(store);
      const cp = s.journal.getState("nix-db-checkpoint");
      s.close();
      if (cp !== undefined) return;
    } catch {
      // not created yet
    }
    await sleep(100);
  }
  throw new Error("daemon did not start");
}

function attestedCount(store: string): number {
  try {
    const s = AttestationStore.open(store);
    const c = s.journal.stats(BUILDER, Date.now()).counts.attested;
    s.close();
    return c;
  } catch {
    return 0;
  }
}

function closure(top: string): Set<string> {
  const r = spawnSync("nix-store", ["-qR", top], { encoding: "utf8", maxBuffer: 1 << 28 });
  return new Set(r.stdout.split("\n").filter(Boolean));
}

/** Registration-to-attestation times of these outputs. */
function latencies(store: string, outputs: Set<string>): void {
  const s = AttestationStore.open(store);
  const rows = s.journal.list(BUILDER, "attested", 10_000_000);
  s.close();
  for (const r of rows) {
    if (!outputs.has(r.path) || r.finishedAt === null) continue;
    const lt = r.deriver ? logTime(r.deriver) : undefined;
    if (lt !== undefined) fromLog.push(r.finishedAt - lt);
    if (r.registeredAt !== null) fromReg.push(r.finishedAt - r.registeredAt);
  }
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? NaN;
}

/** Build-log mtime: written as the build ends, just before Nix registers the output. */
function logTime(drv: string): number | undefined {
  const base = drv.slice("/nix/store/".length);
  try {
    return statSync(`/nix/var/log/nix/drvs/${base.slice(0, 2)}/${base.slice(2)}.bz2`).mtimeMs;
  } catch {
    return undefined;
  }
}

console.log(
  `chains-mode benchmark: fresh ${n + 1}-derivation graphs, substituters off, ${runs} run(s) of each, interleaved`,
);

const emptyHook = join(work, "empty-hook");
writeFileSync(emptyHook, "#!/bin/sh\nexit 0\n", { mode: 0o755 });
const spool = join(work, "spool");
spawnSync("mkdir", ["-p", spool]);
const hook = join(work, "provenix-hook");
writeFileSync(hook, hookScript(spool), { mode: 0o755 });
// Each daemon run gets a fresh home: a daemon that met its store again would first catch
// up with the other scenarios' builds, and measure that instead.
let homes = 0;
function freshHome(name: string): NodeJS.ProcessEnv {
  const e = env(`${name}-${homes++}`);
  keygen(e);
  return e;
}
const fromLog: number[] = [];
const fromReg: number[] = [];
const drains: number[] = [];
const daemonCpu: number[] = [];
const daemonRss: number[] = [];

const scenarios: Record<string, () => Promise<number>> = {
  // 1. No observation.
  none: () => Promise.resolve(buildGraph(confDir("none")).seconds),
  // 2. The daemon watching the Nix database.
  daemon: async () => {
    const de = freshHome("db");
    const store = storeOf(de);
    const before = attestedCount(store);
    const daemon = startDaemon(de, []);
    await started(store);
    const b = buildGraph(confDir("db-build"));
    const tBuilt = Date.now();
    await waitAttested(store, before + n + 1);
    drains.push((Date.now() - tBuilt) / 1000);
    daemonCpu.push(cpuSeconds(daemon.pid));
    daemonRss.push(peakRssMiB(daemon.pid));
    daemon.kill("SIGTERM");
    await new Promise((r) => daemon.once("exit", r));
    latencies(store, closure(b.top));
    return b.seconds;
  },
  // 3. An empty post-build-hook.
  "empty hook": () =>
    Promise.resolve(
      buildGraph(confDir("empty-hook-conf", `post-build-hook = ${emptyHook}\n`)).seconds,
    ),
  // 4. provenix's hook, with the daemon in hook mode draining the spool.
  "provenix hook": async () => {
    const he = freshHome("hook");
    const store = storeOf(he);
    const before = attestedCount(store);
    const daemon = startDaemon(he, ["--mode", "hook", "--spool", spool]);
    await started(store);
    const b = buildGraph(confDir("hook-conf", `post-build-hook = ${hook}\n`));
    await waitAttested(store, before + n + 1);
    daemon.kill("SIGTERM");
    await new Promise((r) => daemon.once("exit", r));
    return b.seconds;
  },
};

const times: Record<string, number[]> = {};
const names = values.only ? values.only.split(",") : Object.keys(scenarios);
for (const name of names) if (!(name in scenarios)) throw new Error(`unknown scenario ${name}`);
for (let r = 0; r < runs; r++) {
  // Rotate the order each run, so slow drift on the machine spreads evenly.
  for (const name of [...names.slice(r % names.length), ...names.slice(0, r % names.length)]) {
    const t = await scenarios[name]!();
    (times[name] ??= []).push(t);
    console.log(`    run ${r + 1}: ${name.padEnd(14)} ${t.toFixed(2)} s`);
  }
}
const med = (name: string) => percentile(times[name] ?? [], 50);
const cpu = percentile(daemonCpu, 50);
console.log(
  `  daemon CPU (user + system) per build of ${n + 1}: ${cpu.toFixed(2)} s = ${((cpu / (n + 1)) * 1000).toFixed(2)} ms per attestation`,
);
console.log(
  `  daemon peak RSS while attesting the ${n + 1}-build burst: ${Math.max(...daemonRss).toFixed(0)} MiB (target <= 150)`,
);
console.log(`  no observation           ${med("none").toFixed(2)} s (median)`);
console.log(
  `  provenix daemon (db)     ${med("daemon").toFixed(2)} s  ratio ${(med("daemon") / med("none")).toFixed(3)} (target <= 1.05); queue drained ${percentile(drains, 50).toFixed(2)} s after the build`,
);
console.log(
  `  registration -> attestation while building: p50 ${percentile(fromLog, 50).toFixed(0)} ms, p99 ${percentile(fromLog, 99).toFixed(0)} ms (from the build log's close, ${fromLog.length} outputs; target p99 < 2000 ms)`,
);
console.log(
  `    against Nix's registrationTime (whole seconds, so up to 1 s high): p50 ${percentile(fromReg, 50).toFixed(0)} ms, p99 ${percentile(fromReg, 99).toFixed(0)} ms`,
);
console.log(
  `  empty post-build-hook    ${med("empty hook").toFixed(2)} s  ratio to none ${(med("empty hook") / med("none")).toFixed(3)}`,
);
console.log(
  `  provenix hook + daemon   ${med("provenix hook").toFixed(2)} s  ratio to empty hook ${(med("provenix hook") / med("empty hook")).toFixed(3)} (target <= 1.10)`,
);

// 5. Sustained rate: a backlog of n+1 outputs built while no daemon ran.
const se = env("rate");
keygen(se);
must(
  spawnSync(process.execPath, [BIN, "daemon", "--once", "--no-gc-roots", "--builder-id", BUILDER], {
    env: se,
  }),
  "daemon --once",
);
buildGraph(confDir("rate-build"));
const t0 = process.hrtime.bigint();
must(
  spawnSync(
    process.execPath,
    [BIN, "daemon", "--once", "--quiet", "--no-gc-roots", "--builder-id", BUILDER],
    { env: se },
  ),
  "daemon --once",
);
const rateSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
console.log(
  `  sustained: ${n + 1} outputs attested in ${rateSeconds.toFixed(2)} s = ${((n + 1) / rateSeconds).toFixed(0)} attestations/s (process start included)`,
);
