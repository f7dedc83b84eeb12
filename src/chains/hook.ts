import { ChainsError } from "./error.js";

/** First word of every spool record, and the marker in the hook script. */
export const SPOOL_RECORD_TAG = "provenix-hook-v1";
export const HOOK_MARKER = "# provenix post-build-hook v1";
const CONF_COMMENT = "# added by 'provenix hook install'";

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * The post-build-hook: POSIX sh built-ins only (no fork+exec), one record per
 * build written to a new file under `spoolDir` (O_EXCL through `set -C`), and
 * always exit 0, because Nix stops building when the hook fails.
 */
export function hookScript(spoolDir: string): string {
  return `#!/bin/sh
${HOOK_MARKER}
# Written by 'provenix hook install'. Nix runs this after every build and waits
# for it, so it only spools the build for 'provenix daemon' with shell built-ins
# and always exits 0: a failing post-build-hook stops Nix building.
# Record: one line, "${SPOOL_RECORD_TAG}<TAB>DRV_PATH<TAB>OUT_PATHS"; the file's
# modification time is when the build finished.
set -C
d=${shellQuote(spoolDir)}
n=0
while [ "$n" -lt 100 ]; do
  if { printf '${SPOOL_RECORD_TAG}\\t%s\\t%s\\n' "$DRV_PATH" "$OUT_PATHS" > "$d/$$.$n"; } 2>/dev/null; then
    break
  fi
  [ -d "$d" ] || break
  n=$((n + 1))
done
exit 0
`;
}

export interface SpoolRecord {
  readonly drvPath: string;
  /** Empty in Nix 2.8 (a Nix bug); the outputs then come from the derivation. */
  readonly outPaths: readonly string[];
}

/**
 * Parse a spool file. `undefined` while the record is still being written (no
 * final newline yet); a ChainsError when it can never be read.
 */
export function parseSpoolRecord(text: string): SpoolRecord | undefined {
  if (!text.endsWith("\n")) return undefined;
  const fields = text.slice(0, -1).split("\t");
  if (fields.length !== 3 || fields[0] !== SPOOL_RECORD_TAG || !fields[1]) {
    throw new ChainsError("BAD_SPOOL_RECORD", "not a provenix post-build-hook record");
  }
  return {
    drvPath: fields[1],
    outPaths: (fields[2] ?? "").split(" ").filter((p) => p !== ""),
  };
}

const HOOK_LINE = /^\s*post-build-hook\s*=\s*(.*?)\s*$/;

function hookSetting(line: string): string | undefined {
  const m = HOOK_LINE.exec(line.replace(/#.*$/, ""));
  return m ? (m[1] ?? "") : undefined;
}

/** nix.conf text with `post-build-hook = hookPath`; refuses to replace another hook. */
export function withHook(nixConf: string, hookPath: string): { text: string; changed: boolean } {
  for (const line of nixConf.split("\n")) {
    const value = hookSetting(line);
    if (value === undefined || value === "") continue;
    if (value === hookPath) return { text: nixConf, changed: false };
    throw new ChainsError(
      "HOOK_CONFLICT",
      `nix.conf already sets post-build-hook = ${value}; provenix will not replace it (remove it, or run provenix's hook from it)`,
    );
  }
  const base = nixConf === "" || nixConf.endsWith("\n") ? nixConf : nixConf + "\n";
  return { text: `${base}${CONF_COMMENT}\npost-build-hook = ${hookPath}\n`, changed: true };
}

/** nix.conf text without provenix's post-build-hook line (and its comment). */
export function withoutHook(nixConf: string, hookPath: string): { text: string; changed: boolean } {
  const lines = nixConf.split("\n");
  const kept: string[] = [];
  let changed = false;
  for (const line of lines) {
    if (hookSetting(line) === hookPath) {
      if (kept.at(-1) === CONF_COMMENT) kept.pop();
      changed = true;
      continue;
    }
    kept.push(line);
  }
  return { text: changed ? kept.join("\n") : nixConf, changed };
}
