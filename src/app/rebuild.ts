import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { DerivationCache, type ResourceDescriptor, type Statement } from "../attest/index.js";
import { isFixedOutput, NixError, type Derivation, type NixStore } from "../nix/index.js";
import {
  DIFF_MEDIA_TYPE,
  diffTrees,
  reproducibilityStatement,
  verdictOf,
  type ClosureItem,
  type DiffReport,
  type OutputBuild,
  type OutputCheck,
  type ReproducibilityPredicate,
  type Verdict,
} from "../repro/index.js";
import type { RebuildRun } from "../store/index.js";
import { diffoscope } from "../system/diffoscope.js";
import { listTree } from "../system/file-tree.js";
import { hashNar } from "../system/nar-dump.js";
import { checkRebuild } from "../system/nix-check.js";
import { realise } from "../system/targets.js";
import { signStatement, type AttestContext } from "./attest.js";
import { buildClosure } from "./closure.js";

export interface RebuildContext extends AttestContext {
  /** How long diffoscope may take per differing output; 0 leaves it out. */
  readonly diffoscopeTimeoutMs: number;
}

export interface StoredReport {
  readonly name: string;
  readonly sha256: string;
  readonly mediaType: string;
}

export interface RebuildResult {
  readonly drvPath: string;
  readonly verdict: Verdict;
  readonly outputs: readonly OutputCheck[];
  /** The outputs were not in the store, so they were built once before the check. */
  readonly builtFirst: boolean;
  readonly attestationId: number;
  readonly keyid: string;
  readonly statement: Statement<ReproducibilityPredicate>;
  /** Per-file differences, when outputs differ (also in the store by digest). */
  readonly diff?: DiffReport;
  readonly reports: readonly StoredReport[];
  /** Why diffoscope's report is missing although outputs differ. */
  readonly diffoscopeNote?: string;
}

export const DIFFOSCOPE_MEDIA_TYPE = "text/plain; charset=utf-8";

async function validOutputs(nix: NixStore, drvPath: string, names: readonly string[]) {
  const outputs = await nix.derivationOutputs(drvPath);
  const infos = await nix.pathInfos([...outputs.values()]);
  const valid = new Map([...outputs].filter(([, p]) => infos.has(p)));
  return { valid, infos, complete: names.every((n) => valid.has(n)) };
}

/**
 * Rebuild one derivation with Nix's `--check` (building it first when its
 * outputs are not in the store), compare NAR hashes, describe any difference,
 * and sign and store a reproducibility attestation. `onStored` runs in the same
 * transaction as the attestation is stored (so a closure run's progress and its
 * attestations land together).
 */
export async function rebuildDerivation(
  ctx: RebuildContext,
  drvPath: string,
  onStored?: (attestationId: number, verdict: Verdict, outputs: readonly OutputCheck[]) => void,
): Promise<RebuildResult> {
  const drv = await ctx.nix.readDerivation(drvPath);
  const drvSha256 = createHash("sha256").update(readFileSync(drvPath)).digest("hex");
  const names = drv.outputs.map(([n]) => n);
  let found = await validOutputs(ctx.nix, drvPath, names);
  const builtFirst = !found.complete;
  if (builtFirst) {
    await realise([drvPath]);
    found = await validOutputs(ctx.nix, drvPath, names);
    if (!found.complete) {
      throw new NixError("NOT_BUILT", `${drvPath} was built, but not all of its outputs are valid`);
    }
  }
  // Nix's version and settings are read while Nix rebuilds.
  const nixInfo = ctx.host.nixInfo();
  nixInfo.catch(() => undefined); // awaited below; a failure must not go unhandled meanwhile
  const started = new Date();
  const run = await checkRebuild(drvPath, found.valid);
  const finished = new Date();
  const { nixVersion, system } = await nixInfo.then((i) => ({
    nixVersion: i.version,
    system: typeof i.settings.system === "string" ? i.settings.system : drv.system,
  }));

  const outputs: OutputCheck[] = [...found.valid].map(([name, path]) => {
    const info = found.infos.get(path);
    if (!info) throw new NixError("NOT_VALID", `${path} is not valid`);
    const stored: OutputBuild = {
      narHash: info.narHash,
      narSize: info.narSize,
      origin: info.ultimate ? "local" : "substituted",
    };
    const check = run.checkPaths.get(name);
    if (check !== undefined) {
      const h = hashNar(check);
      const rebuild: OutputBuild = { narHash: h.sha256, narSize: h.size, origin: "rebuild" };
      // Nix said it differs; a NAR hash equal to the stored one would mean a .check we misread.
      return {
        name,
        path,
        result: h.sha256 === info.narHash ? "reproducible" : "differs",
        builds: [stored, rebuild],
      };
    }
    if (!run.differs) {
      const rebuild: OutputBuild = { ...stored, origin: "rebuild" };
      return { name, path, result: "reproducible", builds: [stored, rebuild] };
    }
    return { name, path, result: "not-compared", builds: [stored] };
  });

  // Reports on the differences, kept by digest and linked from the attestation.
  const differing = outputs.filter((o) => o.result === "differs");
  const pending: { name: string; mediaType: string; content: Buffer }[] = [];
  let diff: DiffReport | undefined;
  let diffoscopeNote: string | undefined;
  if (differing.length > 0) {
    diff = {
      mediaType: DIFF_MEDIA_TYPE,
      derivation: drvPath,
      outputs: differing.map((o) => {
        const rebuildPath = run.checkPaths.get(o.name) ?? "";
        return {
          output: o.name,
          storedPath: o.path,
          rebuildPath,
          files: diffTrees(listTree(o.path), listTree(rebuildPath)),
        };
      }),
    };
    pending.push({
      name: "diff",
      mediaType: DIFF_MEDIA_TYPE,
      content: Buffer.from(JSON.stringify(diff, null, 2) + "\n"),
    });
    if (ctx.diffoscopeTimeoutMs > 0) {
      for (const o of differing) {
        const r = await diffoscope(
          o.path,
          run.checkPaths.get(o.name) ?? "",
          ctx.diffoscopeTimeoutMs,
        );
        if (!r.available) {
          diffoscopeNote =
            "diffoscope is not installed (Debian: apt-get install diffoscope-minimal)";
          break;
        }
        if (!r.ok) diffoscopeNote = r.error;
        else
          pending.push({
            name: `diffoscope:${o.name}`,
            mediaType: DIFFOSCOPE_MEDIA_TYPE,
            content: r.text,
          });
      }
    }
  }

  // Signed first (a keyless signature asks services), then stored in one
  // transaction: the reports and the attestation that names them by digest.
  const reports: StoredReport[] = pending.map((p) => ({
    name: p.name,
    mediaType: p.mediaType,
    sha256: createHash("sha256").update(p.content).digest("hex"),
  }));
  const statement = reproducibilityStatement({
    drvPath,
    drvSha256,
    outputs,
    rebuilderId: ctx.builderId,
    nixVersion,
    system,
    provenixVersion: ctx.provenixVersion,
    started,
    finished,
    reports: reports.map((r): ResourceDescriptor => ({
      name: r.name,
      digest: { sha256: r.sha256 },
      mediaType: r.mediaType,
    })),
  });
  const signed = await signStatement(ctx, statement, drvPath);
  return ctx.store.transaction(() => {
    for (const p of pending) ctx.store.rebuilds.putReport(p.mediaType, p.content);
    const { id } = ctx.store.put(signed.record);
    const verdict = verdictOf(outputs);
    onStored?.(id, verdict, outputs);
    return {
      drvPath,
      verdict,
      outputs,
      builtFirst,
      attestationId: id,
      keyid: signed.keyid,
      statement,
      ...(diff ? { diff } : {}),
      reports,
      ...(diffoscopeNote !== undefined ? { diffoscopeNote } : {}),
    };
  });
}

// --- closures -------------------------------------------------------------------

/** The derivers of a runtime closure's paths that are still on disk, sorted. */
async function runtimeClosure(
  nix: NixStore,
  derivations: DerivationCache,
  root: string,
): Promise<string[]> {
  const outputs = [...(await nix.derivationOutputs(root)).values()];
  if (outputs.length === 0) {
    throw new NixError("NOT_BUILT", `${root} has no outputs in the store: build it first`);
  }
  const infos = await nix.pathInfos(await nix.closure(outputs));
  const drvs = new Set<string>();
  for (const info of infos.values()) if (info.deriver) drvs.add(info.deriver);
  const present: string[] = [];
  for (const d of [...drvs].sort()) {
    try {
      await derivations.get(d);
      present.push(d);
    } catch (e) {
      if (!(e instanceof NixError)) throw e;
    }
  }
  return present;
}

export type ClosureKind = "build" | "runtime";

export interface ClosureProgress {
  readonly done: number;
  readonly total: number;
  readonly item: ClosureItem;
}

export interface ClosureResult {
  readonly run: RebuildRun;
  readonly items: readonly ClosureItem[];
}

/** Why a derivation of the closure is not rebuilt here, if it is not. */
function skipReason(drv: Derivation, system: string): string | undefined {
  if (isFixedOutput(drv))
    return "fixed-output derivation: its output is checked against its declared hash";
  if (drv.system !== system && drv.system !== "builtin") {
    return `needs system ${drv.system}; this machine builds ${system}`;
  }
  return undefined;
}

/**
 * Rebuild every derivation of a closure that can be built here, recording each
 * result as it lands; an unfinished run for the same root is resumed where it
 * stopped, unless `restart`.
 */
export async function rebuildClosure(
  ctx: RebuildContext,
  root: string,
  kind: ClosureKind,
  options: { restart: boolean; progress?: (p: ClosureProgress) => void },
): Promise<ClosureResult> {
  // Each .drv is read once here (the closure walk and the checks below); outputs are not cached.
  const derivations = new DerivationCache(ctx.nix);
  const drvs =
    kind === "build"
      ? await buildClosure(derivations, root)
      : await runtimeClosure(ctx.nix, derivations, root);
  const rb = ctx.store.rebuilds;
  const run = ctx.store.transaction(() =>
    rb.openRun(root, kind, ctx.builderId, drvs, options.restart),
  );
  const info = await ctx.host.nixInfo();
  const system = typeof info.settings.system === "string" ? info.settings.system : "";
  const items = rb.items(run.id);
  // Outputs missing from the store are built in one Nix run (one substituter query, parallel
  // builds); a failure here is left for each derivation's own attempt to report.
  const missing: string[] = [];
  for (const item of items) {
    if (item.status !== "pending") continue;
    const drv = await derivations.get(item.drvPath);
    if (skipReason(drv, system) !== undefined) continue;
    const names = drv.outputs.map(([n]) => n);
    if (!(await validOutputs(ctx.nix, item.drvPath, names)).complete) missing.push(item.drvPath);
  }
  if (missing.length > 0) await realise(missing).catch(() => undefined);
  let done = items.filter((i) => i.status !== "pending").length;
  for (const item of items) {
    if (item.status !== "pending") continue;
    const drv = await derivations.get(item.drvPath);
    const skip = skipReason(drv, system);
    let result: ClosureItem;
    if (skip !== undefined) {
      result = { drvPath: item.drvPath, status: "skipped", detail: skip };
      rb.setItem(run.id, result);
    } else {
      try {
        let stored: ClosureItem = item;
        await rebuildDerivation(ctx, item.drvPath, (attestationId, verdict, outputs) => {
          const differing = outputs.filter((o) => o.result !== "reproducible").map((o) => o.name);
          stored = {
            drvPath: item.drvPath,
            status: verdict,
            attestationId,
            ...(differing.length > 0 ? { detail: `differs: ${differing.join(", ")}` } : {}),
          };
          rb.setItem(run.id, stored);
        });
        result = stored;
      } catch (e) {
        if (!(e instanceof NixError)) throw e;
        result = { drvPath: item.drvPath, status: "failed", detail: e.message };
        rb.setItem(run.id, result);
      }
    }
    done++;
    options.progress?.({ done, total: items.length, item: result });
  }
  rb.finishRun(run.id);
  return { run, items: rb.items(run.id) };
}
