import { existsSync, readFileSync, statSync } from "node:fs";
import { userInfo } from "node:os";
import { join } from "node:path";
import type { AssessFacts } from "../assess/index.js";
import { parseSecretKey } from "../sign/index.js";
import type { NixSettings } from "./build-host.js";

/** Members and uids of a group, from /etc/group and /etc/passwd. */
export function groupMembers(
  group: string,
  etc = "/etc",
): { gid?: number; members: string[]; uids: number[] } {
  const read = (f: string) => (existsSync(join(etc, f)) ? readFileSync(join(etc, f), "utf8") : "");
  const line = read("group")
    .split("\n")
    .map((l) => l.split(":"))
    .find((p) => p[0] === group);
  if (!line) return { members: [], uids: [] };
  const gid = Number(line[2]);
  const members = new Set((line[3] ?? "").split(",").filter((m) => m !== ""));
  const uids: number[] = [];
  for (const p of read("passwd")
    .split("\n")
    .map((l) => l.split(":"))) {
    // Members listed in the group, or whose primary group it is.
    if (p[0] && (members.has(p[0]) || Number(p[3]) === gid)) {
      members.add(p[0]);
      uids.push(Number(p[2]));
    }
  }
  return { gid, members: [...members].sort(), uids: uids.sort((a, b) => a - b) };
}

/** Remote builders from the `builders` setting; `@file` references are read. */
export function remoteBuilders(setting: unknown): string[] {
  const text = typeof setting === "string" ? setting.trim() : "";
  const lines: string[] = [];
  for (const part of text.split(/[;\n]/)) {
    const p = part.trim();
    if (p === "") continue;
    if (p.startsWith("@")) {
      const file = p.slice(1);
      if (existsSync(file)) lines.push(...remoteBuilders(readFileSync(file, "utf8")));
    } else if (!p.startsWith("#")) lines.push(p.split(/\s+/)[0] ?? p);
  }
  return lines;
}

export interface FactSources {
  readonly settings: NixSettings;
  readonly keyPath: string;
  readonly store: { path: string; attestations: number };
  readonly daemon: { running: boolean; mode?: string };
  readonly hosted: boolean;
  readonly distribution?: string;
  readonly daemonSocket?: string;
  readonly sandboxProbe?: AssessFacts["sandboxProbe"];
}

/** Gather the facts `assess` judges from this machine. */
export function gatherAssessFacts(src: FactSources): AssessFacts {
  const settings = src.settings.all;
  const group =
    typeof settings["build-users-group"] === "string" ? settings["build-users-group"] : "";
  const socket = src.daemonSocket ?? "/nix/var/nix/daemon-socket/socket";
  const me = userInfo();
  let key: AssessFacts["key"] = { path: src.keyPath, exists: false, usable: false };
  if (existsSync(src.keyPath)) {
    const st = statSync(src.keyPath);
    let usable: boolean;
    try {
      usable =
        (st.mode & 0o077) === 0 && parseSecretKey(readFileSync(src.keyPath, "utf8")) !== undefined;
    } catch {
      usable = false;
    }
    key = {
      path: src.keyPath,
      exists: true,
      usable,
      mode: st.mode & 0o777,
      uid: st.uid,
      gid: st.gid,
    };
  }
  return {
    nix: {
      version: src.settings.version,
      settings,
      multiUser: existsSync(socket) && (process.env.NIX_REMOTE === "daemon" || me.uid !== 0),
      remoteBuilders: remoteBuilders(settings.builders),
    },
    user: { uid: me.uid, name: me.username },
    buildUsers: { group, ...(group ? groupMembers(group) : { members: [], uids: [] }) },
    key,
    daemon: src.daemon,
    store: src.store,
    hosted: src.hosted,
    ...(src.sandboxProbe ? { sandboxProbe: src.sandboxProbe } : {}),
    ...(src.distribution !== undefined ? { distribution: src.distribution } : {}),
  };
}
