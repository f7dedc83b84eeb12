// SLSA v1.0 Build track assessment of a Nix builder running provenix. Pure: it
// judges facts gathered elsewhere (src/system/assess-facts.ts). docs/slsa.md is
// the argument, requirement by requirement; this is its executable form.

export type Level = 0 | 1 | 2 | 3;
export type Verdict = "met" | "not-met" | "producer";

/** What the assessment looks at. */
export interface AssessFacts {
  readonly nix: {
    readonly version: string;
    /** Effective settings (`nix show-config --json`). */
    readonly settings: Readonly<Record<string, unknown>>;
    /** Builds go through nix-daemon (multi-user Nix). */
    readonly multiUser: boolean;
    /** Remote builders from `builders` (an `@file` reference read). */
    readonly remoteBuilders: readonly string[];
  };
  /** Who runs provenix (and so holds the signing key). */
  readonly user: { readonly uid: number; readonly name: string };
  readonly buildUsers: {
    readonly group: string;
    readonly gid?: number;
    readonly members: readonly string[];
    readonly uids: readonly number[];
  };
  readonly key: {
    readonly path: string;
    readonly exists: boolean;
    /** The key parses as a signing key. */
    readonly usable: boolean;
    readonly mode?: number;
    readonly uid?: number;
    readonly gid?: number;
  };
  readonly daemon: {
    /** A `provenix daemon` heartbeat on this store within the last 30 s. */
    readonly running: boolean;
    readonly mode?: string;
  };
  readonly store: { readonly path: string; readonly attestations: number };
  /**
   * What a probe build with this machine's settings saw: "sandboxed" when the builder
   * ran in its own PID namespace (it is PID 1), "not-sandboxed" when it did not (the
   * sandbox is off, or Nix fell back), "failed" when the probe did not build.
   */
  readonly sandboxProbe?: {
    readonly result: "sandboxed" | "not-sandboxed" | "failed";
    readonly detail: string;
  };
  /** Declared in the provenix config: this machine is a dedicated build host, not a workstation. */
  readonly hosted: boolean;
  /** Declared in the provenix config: where consumers get the provenance. */
  readonly distribution?: string;
}

export interface Finding {
  readonly id: string;
  readonly requirement: string;
  /** Lowest Build level that needs it. */
  readonly level: 1 | 2 | 3;
  readonly verdict: Verdict;
  readonly evidence: readonly string[];
  /** What to change when it is not met. */
  readonly fix?: string;
}

export interface Assessment {
  /** Highest Build level whose platform requirements are all met (0: none). */
  readonly level: Level;
  readonly findings: readonly Finding[];
}

function bool(v: unknown): boolean {
  return v === true || v === "true";
}

function list(v: unknown): string[] {
  if (Array.isArray(v)) return v.map(String).filter((s) => s !== "");
  if (typeof v === "string") return v.split(/\s+/).filter((s) => s !== "");
  return [];
}

interface Check {
  readonly ok: boolean;
  readonly evidence: string;
  readonly fix?: string;
}

function finding(
  id: string,
  requirement: string,
  level: 1 | 2 | 3,
  checks: readonly Check[],
): Finding {
  const failed = checks.filter((c) => !c.ok);
  return {
    id,
    requirement,
    level,
    verdict: failed.length === 0 ? "met" : "not-met",
    evidence: checks.map((c) => `${c.ok ? "ok" : "gap"}: ${c.evidence}`),
    ...(failed.length > 0
      ? {
          fix: failed
            .map((c) => c.fix)
            .filter((f): f is string => f !== undefined)
            .join("; "),
        }
      : {}),
  };
}

/** Judge the facts against the SLSA v1.0 Build track (L1-L3), requirement by requirement. */
export function assess(f: AssessFacts): Assessment {
  const s = f.nix.settings;
  const sandbox = s.sandbox;
  const sandboxOn = bool(sandbox);
  const buildGroup = typeof s["build-users-group"] === "string" ? s["build-users-group"] : "";
  const buildUsersOn = buildGroup !== "" && f.buildUsers.uids.length > 0;
  const keyMode = f.key.mode ?? 0;
  const keyPrivate = f.key.exists && (keyMode & 0o077) === 0;
  const keyOwned = f.key.uid === f.user.uid;
  const keyNotBuildUser =
    f.key.uid !== undefined &&
    !f.buildUsers.uids.includes(f.key.uid) &&
    (f.key.gid === undefined || f.key.gid !== f.buildUsers.gid || (keyMode & 0o040) === 0);
  const substituters = list(s.substituters);
  const remoteBuilders = f.nix.remoteBuilders;
  const features = list(s["experimental-features"]);

  const signingKey: Check = {
    ok: f.key.usable,
    evidence: f.key.usable
      ? `signing key ${f.key.path} loads`
      : f.key.exists
        ? `signing key ${f.key.path} cannot be used (unreadable, malformed or group/other-readable)`
        : `no signing key at ${f.key.path}`,
    fix: "run 'provenix keygen' (mode 600, owned by the account that runs provenix)",
  };
  const observing: Check = {
    ok: f.daemon.running,
    evidence: f.daemon.running
      ? `provenix daemon is running (${f.daemon.mode ?? "db"} mode) on ${f.store.path}`
      : `no provenix daemon running on ${f.store.path}; ${f.store.attestations} attestations stored`,
    fix: "run 'provenix daemon' (contrib/systemd/provenix-daemon.service) so every build is attested",
  };
  const separateBuildUsers: Check = {
    ok: buildUsersOn,
    evidence: buildUsersOn
      ? `builds run as the ${f.buildUsers.uids.length} users of group '${buildGroup}', not as the key's owner`
      : buildGroup === ""
        ? "build-users-group is empty: builds run as the user who started them"
        : `build-users-group '${buildGroup}' has no members on this machine`,
    fix: "set build-users-group = nixbld with nixbld1..N users (a multi-user Nix does this)",
  };

  const findings: Finding[] = [
    {
      id: "producer-platform",
      requirement: "Producer: choose an appropriate build platform",
      level: 1,
      verdict: "producer",
      evidence: ["the producer's choice: this assessment tells which level this platform supports"],
    },
    {
      id: "producer-consistent",
      requirement: "Producer: follow a consistent build process",
      level: 1,
      verdict: "producer",
      evidence: [
        "Nix derivations fix the build process; the buildType records the derivation, so verifiers can form expectations",
      ],
    },
    finding("producer-distribute", "Producer: distribute provenance", 1, [
      {
        ok: f.distribution !== undefined && f.distribution !== "",
        evidence:
          f.distribution !== undefined && f.distribution !== ""
            ? `declared in the provenix config: ${f.distribution}`
            : "no distribution declared: attestations stay in the local store",
        fix: "publish attestations to consumers (provenix export, or next to images in a registry) and declare it as 'distribution' in the provenix config",
      },
    ]),
    finding("provenance-exists", "Provenance exists", 1, [
      signingKey,
      {
        ok: f.daemon.running || f.store.attestations > 0,
        evidence: f.daemon.running
          ? `provenix daemon is running on ${f.store.path}: every build is attested`
          : `${f.store.attestations} attestations in ${f.store.path}, made on request (no daemon running)`,
        fix: "run 'provenix daemon' so every build is attested (or 'provenix attest' after each build)",
      },
    ]),
    finding("provenance-authentic", "Provenance is authentic", 2, [
      signingKey,
      {
        ok: keyPrivate && keyOwned,
        evidence: !f.key.exists
          ? "no key file"
          : `key file mode ${keyMode.toString(8).padStart(3, "0")}, owner uid ${String(f.key.uid)}, provenix runs as uid ${f.user.uid}`,
        fix: `chmod 600 ${f.key.path} and make it owned by the account that runs provenix`,
      },
      separateBuildUsers,
      observing,
    ]),
    finding("hosted", "Isolation: hosted", 2, [
      {
        ok: f.hosted,
        evidence: f.hosted
          ? "declared in the provenix config: a dedicated build host"
          : "not declared hosted: a workstation cannot claim L2",
        fix: 'build on a dedicated builder (CI runner, build farm node) and set "hosted": true in its provenix config',
      },
    ]),
    finding("provenance-unforgeable", "Provenance is unforgeable", 3, [
      {
        ok: keyPrivate && keyOwned && keyNotBuildUser,
        evidence: keyNotBuildUser
          ? "the signing key is not readable by build users"
          : "the signing key is owned by, or group-readable to, the build users",
        fix: "keep the key mode 600, owned by the provenix account, never by a build user or their group",
      },
      separateBuildUsers,
      {
        ok: f.daemon.running && f.daemon.mode !== "hook",
        evidence: f.daemon.running
          ? f.daemon.mode === "hook"
            ? "the daemon takes build announcements from the post-build-hook spool"
            : "every provenance field is read by the daemon from Nix's database and the .drv files, outside the build"
          : "no daemon: provenance is generated on request, not by the platform",
        fix: "run 'provenix daemon' in db mode (the default)",
      },
    ]),
    finding("isolated", "Isolation: isolated", 3, [
      {
        ok: sandboxOn,
        evidence: `sandbox = ${JSON.stringify(sandbox)}`,
        fix: "set sandbox = true (each build in its own namespaces with a fresh, minimal filesystem)",
      },
      {
        ok: !sandboxOn || !bool(s["sandbox-fallback"]),
        evidence: `sandbox-fallback = ${JSON.stringify(s["sandbox-fallback"])}`,
        fix: "set sandbox-fallback = false (otherwise Nix builds unsandboxed where it cannot sandbox)",
      },
      ...(f.sandboxProbe && sandboxOn
        ? [
            {
              ok: f.sandboxProbe.result === "sandboxed",
              evidence: `probe build: ${f.sandboxProbe.result} (${f.sandboxProbe.detail})`,
              fix:
                f.sandboxProbe.result === "failed"
                  ? "make sandboxed builds work here (extra-sandbox-paths for what builders use, user namespaces), then assess again"
                  : "Nix cannot sandbox on this machine and falls back: give it user and mount namespaces (not a plain chroot or a restricted container)",
            },
          ]
        : []),
      separateBuildUsers,
      {
        ok: substituters.length === 0 || bool(s["require-sigs"]),
        evidence: `require-sigs = ${JSON.stringify(s["require-sigs"])}, substituters = ${JSON.stringify(substituters)}`,
        fix: "set require-sigs = true so that no unsigned path can poison the store",
      },
      {
        ok: remoteBuilders.length === 0,
        evidence:
          remoteBuilders.length === 0
            ? "no remote builders"
            : `remote builders configured (${remoteBuilders.join(", ")}): their isolation is not assessed here`,
        fix: "assess each remote builder itself, or set builders = ''",
      },
      {
        ok: !features.includes("impure-derivations"),
        evidence: `experimental-features = ${JSON.stringify(features)}`,
        fix: "disable the impure-derivations experimental feature",
      },
    ]),
  ];
  let level: Level = 0;
  for (const l of [1, 2, 3] as const) {
    if (
      findings.every((x) => x.level > l || x.verdict !== "not-met" || x.id.startsWith("producer"))
    )
      level = l;
    else break;
  }
  return { level, findings };
}

/** The query parameter of builder.id that carries the level provenix assessed. */
export const BUILD_LEVEL_PARAM = "slsa-build-level";

/** builder.id claiming Build level `level` (the assessed level; see `provenix assess`). */
export function withBuildLevel(builderId: string, level: Level): string {
  const url = new URL(builderId);
  url.searchParams.set(BUILD_LEVEL_PARAM, String(level));
  return url.toString();
}

/** The Build level a builder.id claims, if any. */
export function claimedBuildLevel(builderId: string): Level | undefined {
  let v: string | null;
  try {
    v = new URL(builderId).searchParams.get(BUILD_LEVEL_PARAM);
  } catch {
    return undefined;
  }
  return v === "0" || v === "1" || v === "2" || v === "3" ? (Number(v) as Level) : undefined;
}

/** builder.id without its level claim: the builder's identity. */
export function withoutBuildLevel(builderId: string): string {
  try {
    const url = new URL(builderId);
    if (!url.searchParams.has(BUILD_LEVEL_PARAM)) return builderId;
    url.searchParams.delete(BUILD_LEVEL_PARAM);
    return url.toString();
  } catch {
    return builderId;
  }
}
