import { createHash } from "node:crypto";
import { closeSync, fstatSync, openSync, readFileSync, readSync } from "node:fs";
import { basename, join } from "node:path";
import type { BuildHost, BuildLog, NixInfo, SandboxProbe } from "../attest/index.js";
import { runNix, runNixCommand } from "./exec.js";
import { NixError } from "../nix/index.js";

/** Settings that change what a build can see or who it trusts (documented in the buildType). */
export const BUILD_RELEVANT_SETTINGS = [
  "allow-new-privileges",
  "allowed-impure-host-deps",
  "build-users-group",
  "experimental-features",
  "filter-syscalls",
  "impersonate-linux-26",
  "require-sigs",
  "restrict-eval",
  "sandbox",
  "sandbox-fallback",
  "sandbox-paths",
  "substituters",
  "system",
  "system-features",
  "trusted-public-keys",
] as const;

export interface NixSettings {
  readonly version: string;
  /** When `nix config show` printed them. */
  readonly readOn: Date;
  /** Every setting `nix config show --json` reports, name -> value. */
  readonly all: Record<string, unknown>;
}

/**
 * `nix config show` (Nix 2.20 and later, Lix), else `nix show-config`: the only form in
 * 2.8, a deprecated alias since.
 */
async function configShow(args: readonly string[]): Promise<{ stdout: string }> {
  try {
    return await runNixCommand(["config", "show", ...args]);
  } catch (e) {
    if (!(e instanceof NixError) || e.code !== "NIX_COMMAND_FAILED") throw e;
    return runNixCommand(["show-config", ...args]);
  }
}

/** Nix's version and effective configuration (honours NIX_CONF_DIR, NIX_CONFIG). */
export async function readNixSettings(): Promise<NixSettings> {
  const readOn = new Date();
  const [version, config, text] = await Promise.all([
    runNix("nix", ["--version"]),
    configShow(["--json"]),
    configShow([]),
  ]);
  const all: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(
    JSON.parse(config.stdout) as Record<string, { value: unknown }>,
  )) {
    all[k] = v.value;
  }
  // Nix 2.8's JSON prints experimental-features as enum numbers; the text form has names.
  const features = /^experimental-features = (.*)$/m.exec(text.stdout);
  if (features)
    all["experimental-features"] = (features[1] ?? "").split(" ").filter((f) => f !== "");
  const m = /(\d+\.\d+(?:\.\d+)?\S*)\s*$/.exec(version.stdout.trim());
  return { version: m?.[1] ?? version.stdout.trim(), readOn, all };
}

export function buildRelevant(all: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of BUILD_RELEVANT_SETTINGS) if (k in all) out[k] = all[k];
  return out;
}

/** A sandbox setting that is on: true, or "relaxed" (`nix config show` may print strings). */
export function sandboxEnabled(v: unknown): boolean {
  return v === true || v === "true" || v === "relaxed";
}

/**
 * Build a one-line derivation with this machine's Nix settings as they are and ask it
 * whether it ran sandboxed: in Nix's sandbox the builder is PID 1 of its own PID
 * namespace. This is what `sandbox = true` alone cannot tell: whether Nix fell back.
 * Each probe is a new (tiny) store path, so that Nix builds it rather than reusing one.
 */
async function probeSandbox(): Promise<SandboxProbe> {
  const salt = `${process.pid}-${Date.now()}`;
  const expr = `derivation { name = "provenix-sandbox-probe"; system = builtins.currentSystem; builder = "/bin/sh"; salt = "${salt}"; args = [ "-c" "echo $$ > $out" ]; }`;
  try {
    const { stdout } = await runNix("nix-build", ["--no-out-link", "-E", expr]);
    const out = stdout.trim().split("\n").at(-1) ?? "";
    const pid = readFileSync(out, "utf8").trim();
    return pid === "1"
      ? { result: "sandboxed", detail: "the builder was PID 1 of its own namespace" }
      : { result: "not-sandboxed", detail: `the builder ran as PID ${pid} of the host` };
  } catch (e) {
    return {
      result: "failed",
      detail: e instanceof Error ? (e.message.split("\n")[0] ?? "") : String(e),
    };
  }
}

/**
 * The local machine as a BuildHost: `nix config show` at most once a minute (a
 * daemon's provenance then carries settings read close to each build), logs under
 * NIX_LOG_DIR.
 */
export class LocalBuildHost implements BuildHost {
  private settings?: Promise<NixSettings>;
  private settingsAt = 0;
  constructor(
    readonly logDir: string = process.env.NIX_LOG_DIR ?? "/nix/var/log/nix",
    private readonly settingsMaxAgeMs = 60_000,
  ) {}

  nixSettings(): Promise<NixSettings> {
    if (!this.settings || Date.now() - this.settingsAt > this.settingsMaxAgeMs) {
      this.settings = readNixSettings();
      this.settingsAt = Date.now();
    }
    return this.settings;
  }

  /** The last probe, and the settings read it was made under: one probe per read. */
  private probe?: { settings: Promise<NixSettings>; result: Promise<SandboxProbe> };

  /** Whether builds here really get the sandbox: a probe build, once per settings read. */
  sandboxProbe(): Promise<SandboxProbe> {
    const settings = this.nixSettings();
    if (this.probe?.settings !== settings) this.probe = { settings, result: probeSandbox() };
    return this.probe.result;
  }

  /**
   * Nix's version and settings; with `sandbox = true` and `sandbox-fallback = true`
   * also the sandbox probe. Otherwise there is nothing to find out: off is off, and
   * without the fallback a build that cannot be sandboxed fails.
   */
  async nixInfo(): Promise<NixInfo> {
    const s = await this.nixSettings();
    const sandboxProbe =
      sandboxEnabled(s.all.sandbox) && sandboxEnabled(s.all["sandbox-fallback"])
        ? await this.sandboxProbe()
        : undefined;
    return {
      version: s.version,
      settings: buildRelevant(s.all),
      settingsReadOn: s.readOn,
      ...(sandboxProbe ? { sandboxProbe } : {}),
    };
  }

  /**
   * libstore: logs live at <logDir>/drvs/<first two chars>/<rest of the .drv base name>[.bz2].
   * Read synchronously, as the `.drv` files are: a log is a few KB to a few MB, and
   * on the thread pool each took six round trips (open, two fstats, two reads,
   * close) whose wake-ups cost more than the reads. A log that is not there is no
   * log; one that is there but cannot be read is an error, not a silent omission
   * from the provenance.
   */
  buildLog(drvPath: string): Promise<BuildLog | undefined> {
    return new Promise((resolve) => resolve(this.readLog(drvPath)));
  }

  private readLog(drvPath: string): BuildLog | undefined {
    const base = basename(drvPath);
    for (const [suffix, mediaType] of [
      [".bz2", "application/x-bzip2"],
      ["", "text/plain"],
    ] as const) {
      const file = join(this.logDir, "drvs", base.slice(0, 2), base.slice(2) + suffix);
      let fd;
      try {
        fd = openSync(file, "r");
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOENT") continue; // no log of this kind
        throw unreadableLog(file, e);
      }
      try {
        const st = fstatSync(fd);
        const hash = createHash("sha256");
        logBuffer ??= Buffer.allocUnsafeSlow(LOG_CHUNK);
        for (let n; (n = readSync(fd, logBuffer, 0, LOG_CHUNK, null)) > 0;) {
          hash.update(logBuffer.subarray(0, n));
        }
        return {
          uri: "file://" + file,
          sha256: hash.digest("hex"),
          mediaType,
          // Nix creates the log when the build starts and closes it when it ends.
          ...(st.birthtimeMs > 0
            ? { startedOn: new Date(Math.floor(st.birthtimeMs / 1000) * 1000) }
            : {}),
          finishedOn: new Date(Math.floor(st.mtimeMs / 1000) * 1000),
        };
      } catch (e) {
        throw unreadableLog(file, e);
      } finally {
        closeSync(fd);
      }
    }
    return undefined;
  }
}

/** Logs are hashed LOG_CHUNK bytes at a time through one buffer, however large. */
const LOG_CHUNK = 256 * 1024;
let logBuffer: Buffer | undefined;

function unreadableLog(file: string, cause: unknown): NixError {
  const code = (cause as NodeJS.ErrnoException).code ?? String(cause);
  return new NixError("NIX_LOG_UNREADABLE", `cannot read the build log ${file}: ${code}`);
}
