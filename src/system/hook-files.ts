import {
  chmodSync,
  copyFileSync,
  existsSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { makeDirs } from "./make-dirs.js";
import { hookScript, HOOK_MARKER, withHook, withoutHook } from "../chains/index.js";

/** The nix.conf Nix reads: $NIX_CONF_DIR/nix.conf, else /etc/nix/nix.conf. */
export function defaultNixConf(): string {
  return join(process.env.NIX_CONF_DIR ?? "/etc/nix", "nix.conf");
}

export interface HookPaths {
  /** The hook script. */
  readonly hook: string;
  /** Where the hook spools records for the daemon. */
  readonly spool: string;
  readonly nixConf: string;
}

export interface HookChange {
  readonly scriptWritten: boolean;
  readonly nixConfChanged: boolean;
  /** The copy of nix.conf taken before provenix first changed it. */
  readonly backup?: string;
}

function writeAtomic(path: string, text: string, mode: number): void {
  makeDirs(dirname(path));
  const tmp = `${path}.provenix-tmp-${process.pid}`;
  writeFileSync(tmp, text, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, path);
}

/** Install the hook script, the spool directory and the nix.conf line; idempotent. */
export function installHook(p: HookPaths): HookChange {
  const script = hookScript(p.spool);
  const current = existsSync(p.hook) ? readFileSync(p.hook, "utf8") : undefined;
  const scriptWritten = current !== script;
  const conf = existsSync(p.nixConf) ? readFileSync(p.nixConf, "utf8") : "";
  const { text, changed } = withHook(conf, p.hook); // throws before anything is written
  makeDirs(p.spool, 0o755);
  if (scriptWritten) writeAtomic(p.hook, script, 0o755);
  let backup: string | undefined;
  if (changed) {
    backup = `${p.nixConf}.provenix-backup`;
    if (existsSync(p.nixConf) && !existsSync(backup)) copyFileSync(p.nixConf, backup);
    writeAtomic(p.nixConf, text, 0o644);
  }
  return { scriptWritten, nixConfChanged: changed, ...(backup ? { backup } : {}) };
}

/** Remove the nix.conf line and the hook script (the spool is left for the daemon to drain). */
export function uninstallHook(p: HookPaths): HookChange {
  let nixConfChanged = false;
  if (existsSync(p.nixConf)) {
    const { text, changed } = withoutHook(readFileSync(p.nixConf, "utf8"), p.hook);
    if (changed) writeAtomic(p.nixConf, text, 0o644);
    nixConfChanged = changed;
  }
  let scriptWritten = false;
  if (existsSync(p.hook) && readFileSync(p.hook, "utf8").includes(HOOK_MARKER)) {
    unlinkSync(p.hook);
    scriptWritten = true;
  }
  return { scriptWritten, nixConfChanged };
}
