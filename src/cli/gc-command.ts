import { collectGarbage } from "../app/gc.js";
import { printJson } from "./args.js";
import type { Command } from "./command.js";
import { CliError, EXIT } from "./errors.js";

const BATCH = 10_000;

const UNITS: Record<string, number> = {
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
};

/** A retention period: a number and a unit (s, m, h, d, w), e.g. 90d. */
export function parseRetention(v: string): number {
  const m = /^([0-9]+)([smhdw])$/.exec(v);
  if (!m)
    throw new CliError("USAGE", `--older-than takes a period such as 90d, 12h or 2w, not '${v}'`);
  return Number(m[1]) * (UNITS[m[2] as string] as number);
}

export const gcCommand: Command = {
  usage: "Usage: provenix gc --older-than PERIOD [options]",
  help: `Removes from the attestation store the attestations made longer ago than
PERIOD (a number and a unit: s, m, h, d or w, e.g. 90d) whose subjects are all
store paths that are no longer valid in the Nix store (garbage-collected).
An attestation with a subject still present, or with a subject that is not a
store path (an image, a file), is kept: gc never removes the evidence of a path
that is still here. Journal entries that point at a removed attestation go with
it. Reports what was removed (and, with --json, each attestation's id, type,
time and subjects).

Options:
  --older-than PERIOD  the retention period (required)
  --dry-run            report what would be removed, remove nothing
  --vacuum             give the freed space back to the file system afterwards
                       (rewrites the store file; needs as much free space)
  --quiet              no progress on stderr
  --json               print the report as JSON

Exit status: 0, whether or not anything was removed.`,
  options: {
    "older-than": { type: "string" },
    "dry-run": { type: "boolean" },
    vacuum: { type: "boolean" },
    quiet: { type: "boolean" },
  },
  async run(ctx, inv) {
    const period = inv.values["older-than"];
    if (typeof period !== "string") throw new CliError("USAGE", "gc needs --older-than PERIOD");
    if (inv.positionals.length > 0) throw new CliError("USAGE", "gc takes no arguments");
    const before = new Date(Date.now() - parseRetention(period));
    const dryRun = inv.values["dry-run"] === true;
    // Progress on stderr, after each full batch (a small store prints none).
    const progress =
      inv.values.quiet === true
        ? undefined
        : (seen: number, removed: number) => {
            if (seen % BATCH === 0)
              inv.io.err(`gc: ${seen} old attestation(s) checked, ${removed} to remove\n`);
          };
    const report = await collectGarbage(ctx.store, ctx.nix, {
      before,
      dryRun,
      batch: BATCH,
      ...(progress ? { progress } : {}),
    });
    if (inv.values.vacuum === true && !dryRun && report.removed.length > 0) ctx.store.vacuum();
    if (inv.json) {
      printJson(inv, report);
      return EXIT.OK;
    }
    const byType = new Map<string, number>();
    for (const r of report.removed)
      byType.set(r.predicateType, (byType.get(r.predicateType) ?? 0) + 1);
    inv.io.out(
      `${dryRun ? "would remove" : "removed"} ${report.removed.length} of ${report.candidates} attestation(s) made before ${report.before} (${report.bytes} bytes of bundles); kept ${report.kept.present} with a subject still present, ${report.kept.notStorePath} about something other than store paths\n`,
    );
    for (const [type, n] of [...byType].sort()) inv.io.out(`  ${n} ${type}\n`);
    return EXIT.OK;
  },
};
