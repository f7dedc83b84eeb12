import { readDaemonState } from "../app/chains.js";
import { assess, withBuildLevel, type Assessment, type Level } from "../assess/index.js";
import { gatherAssessFacts } from "../system/assess-facts.js";
import { sandboxEnabled } from "../system/build-host.js";
import { AttestationStore } from "../store/index.js";
import type { Command } from "./command.js";
import type { Context } from "./context.js";
import { CliError, EXIT } from "./errors.js";

/** Assess this machine as configured (the store is only read, and not created). */
export async function assessHere(
  ctx: Context,
  opts: { daemonRunning?: boolean; probe?: boolean } = {},
): Promise<Assessment> {
  let attestations = 0;
  let daemon: { running: boolean; mode?: string } = { running: false };
  try {
    const store = AttestationStore.open(ctx.config.store);
    try {
      attestations = store.count();
      const s = readDaemonState(store.journal);
      if (s && s.stoppedAt === undefined && Date.now() - s.heartbeatAt < 30_000)
        daemon = { running: true, mode: s.mode };
    } finally {
      store.close();
    }
  } catch {
    // no store yet: nothing attested, no daemon
  }
  if (opts.daemonRunning) daemon = { running: true, mode: "db" };
  const settings = await ctx.host.nixSettings();
  const probe = sandboxEnabled(settings.all.sandbox) && opts.probe !== false;
  const facts = gatherAssessFacts({
    settings,
    ...(probe ? { sandboxProbe: await ctx.host.sandboxProbe() } : {}),
    keyPath: ctx.config.key,
    store: { path: ctx.config.store, attestations },
    daemon,
    hosted: ctx.config.hosted,
    ...(ctx.config.distribution !== undefined ? { distribution: ctx.config.distribution } : {}),
  });
  return assess(facts);
}

export const assessCommand: Command = {
  usage: "Usage: provenix assess [options]",
  help: `Checks the local Nix installation and provenix's own configuration against the
SLSA v1.0 Build track (docs/slsa.md explains each requirement and the evidence)
and prints the Build level this machine can claim, with the evidence for each
requirement and the fix for each gap: sandbox disabled, signing key readable by
build users, builds running as the key's owner, substituters without
signatures, no daemon running, provenance not distributed, and so on.

"hosted" and "distribution" cannot be seen from the machine: declare them in the
provenix config file ("hosted": true, "distribution": "where consumers get it").

With the sandbox on, a probe build (a one-line derivation, a new tiny store path
each time) checks that builds really run sandboxed: Nix falls back to no sandbox
where it cannot make one (sandbox-fallback), and says so only in its log.

Options:
  --key FILE          the signing key to assess (default: as for attest)
  --no-probe          do not build the sandbox probe
  --level N           exit 1 unless this machine can claim Build level N
  --json              print the assessment as JSON`,
  options: { key: { type: "string" }, level: { type: "string" }, "no-probe": { type: "boolean" } },
  keyIsSigningKey: true,
  async run(ctx, inv) {
    const wanted = typeof inv.values.level === "string" ? inv.values.level : undefined;
    if (wanted !== undefined && !["0", "1", "2", "3"].includes(wanted))
      throw new CliError("USAGE", `--level takes 0, 1, 2 or 3, not '${wanted}'`);
    const a = await assessHere(ctx, { probe: inv.values["no-probe"] !== true });
    const pass = wanted === undefined || a.level >= Number(wanted);
    if (inv.json) {
      inv.io.out(
        JSON.stringify(
          {
            slsaVersion: "1.0",
            track: "build",
            ...a,
            ...(wanted !== undefined ? { required: Number(wanted), pass } : {}),
          },
          null,
          2,
        ) + "\n",
      );
    } else {
      for (const f of a.findings) {
        const mark =
          f.verdict === "met" ? "met    " : f.verdict === "producer" ? "yours  " : "NOT MET";
        inv.io.out(`${mark}  L${f.level}  ${f.requirement}\n`);
        for (const e of f.evidence) inv.io.out(`           ${e}\n`);
        if (f.fix) inv.io.out(`           fix: ${f.fix}\n`);
      }
      inv.io.out(
        `\nThis machine can claim SLSA Build L${a.level}` +
          (wanted !== undefined ? ` (required: L${wanted}: ${pass ? "pass" : "FAIL"})` : "") +
          "\n",
      );
    }
    return pass ? EXIT.OK : EXIT.VERIFY_FAILED;
  },
};

/**
 * With --claim-level N: builder.id carries `slsa-build-level=N`, but only when
 * this machine assesses at N or higher now; otherwise nothing is attested.
 */
export async function claimLevel(
  ctx: Context,
  value: unknown,
  opts: { daemonRunning?: boolean } = {},
): Promise<void> {
  if (value === undefined) return;
  if (typeof value !== "string" || !["1", "2", "3"].includes(value))
    throw new CliError("USAGE", "--claim-level takes 1, 2 or 3");
  const wanted = Number(value) as Level;
  const a = await assessHere(ctx, opts);
  if (a.level < wanted) {
    const gaps = a.findings
      .filter((f) => f.verdict === "not-met" && f.level <= wanted && !f.id.startsWith("producer"))
      .map((f) => f.requirement)
      .join(", ");
    throw new CliError(
      "CONFIG",
      `cannot claim SLSA Build L${wanted}: this machine assesses at L${a.level} (not met: ${gaps}; see provenix assess)`,
    );
  }
  ctx.config = { ...ctx.config, builderId: withBuildLevel(ctx.config.builderId, wanted) };
}
