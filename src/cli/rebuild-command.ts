import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { importBundle, consensus } from "../app/consensus.js";
import {
  rebuildClosure,
  rebuildDerivation,
  type ClosureKind,
  type RebuildContext,
  type RebuildResult,
} from "../app/rebuild.js";
import {
  describeDifference,
  REPRODUCIBILITY_V1,
  renderHtml,
  renderText,
  summarize,
  type ClaimSource,
  type PathConsensus,
} from "../repro/index.js";
import { StoreError } from "../store/index.js";
import { classifyTarget } from "../system/targets.js";
import { VERSION } from "../version.js";
import { derivationsFor, needTargets, printJson, strings, trustedKeysFrom } from "./args.js";
import type { Command, Invocation } from "./command.js";
import type { Context } from "./context.js";
import { CliError, EXIT } from "./errors.js";
import { attachedBundles, REGISTRY_HELP, REGISTRY_OPTIONS } from "./oci-command.js";
import { CACHE_IMPORT_HELP, importFrom } from "./cache-command.js";
import { SIGNING_HELP, SIGNING_OPTIONS } from "./sigstore-options.js";

const DIFFOSCOPE_TIMEOUT_S = 300;

const TRUST_OPTIONS = {
  key: { type: "string", multiple: true },
  "trusted-key": { type: "string", multiple: true },
  "no-nix-keys": { type: "boolean" },
} as const;

const TRUST_HELP = `  --key FILE          a trusted public key file (Nix keys or one PEM key; repeatable)
  --trusted-key KEY   a trusted Nix public key, name:base64 (repeatable)
  --no-nix-keys       do not trust Nix's trusted-public-keys`;

async function rebuildContext(ctx: Context, inv: Invocation): Promise<RebuildContext> {
  const timeout =
    typeof inv.values["diffoscope-timeout"] === "string"
      ? Number(inv.values["diffoscope-timeout"])
      : DIFFOSCOPE_TIMEOUT_S;
  if (!Number.isFinite(timeout) || timeout <= 0) {
    throw new CliError("USAGE", "--diffoscope-timeout takes a number of seconds above 0");
  }
  return {
    nix: ctx.nix,
    host: ctx.host,
    signer: await ctx.bundleSigner(inv, inv.values.key !== undefined),
    store: ctx.store,
    builderId: ctx.config.builderId,
    provenixVersion: VERSION,
    diffoscopeTimeoutMs: inv.values["no-diffoscope"] === true ? 0 : timeout * 1000,
  };
}

function renderRebuild(r: RebuildResult, inv: Invocation, store: string): void {
  const out = (t: string) => inv.io.out(t + "\n");
  out(
    `rebuilt ${r.drvPath}${r.builtFirst ? " (built first: its outputs were not in the store)" : ""}: ` +
      (r.verdict === "reproducible" ? "reproducible" : "UNREPRODUCIBLE"),
  );
  for (const o of r.outputs) {
    const [stored, rebuild] = o.builds;
    const first = `stored sha256:${stored?.narHash ?? "?"} (${stored?.origin ?? "?"})`;
    if (o.result === "reproducible") out(`  ${o.name}  ${o.path}  ${first}, rebuild identical`);
    else if (o.result === "differs") {
      out(`  ${o.name}  ${o.path}  ${first}, rebuild sha256:${rebuild?.narHash ?? "?"}`);
      out(`    the rebuild is kept at ${o.path}.check`);
      const files = r.diff?.outputs.find((d) => d.output === o.name)?.files ?? [];
      for (const f of files.slice(0, 20)) out(`    ${describeDifference(f)}`);
      if (files.length > 20) out(`    ... and ${files.length - 20} more (see the diff report)`);
    } else
      out(`  ${o.name}  ${o.path}  ${first}, not compared (Nix stops at the first difference)`);
  }
  for (const rep of r.reports) {
    out(`  report ${rep.name}: sha256:${rep.sha256} (provenix report ${rep.sha256})`);
  }
  if (r.diffoscopeNote !== undefined) out(`  no diffoscope report: ${r.diffoscopeNote}`);
  out(`stored as attestation #${r.attestationId} in ${store}`);
}

const rebuild: Command = {
  usage: "Usage: provenix rebuild [options] <./result | store path | .drv | installable>...",
  help: `Rebuilds the derivation behind each target with Nix's --check (building it
once first if its outputs are not in the store), compares the NAR hash of every
output with the stored copy, and signs a reproducibility attestation
(${REPRODUCIBILITY_V1}; docs/reproducibility.md) that is stored and exported
like provenance. When an output differs, Nix keeps the rebuild at
<output>.check; provenix lists the files that differ (sizes and hashes) and, if
Debian's diffoscope is installed, keeps its report; both are linked from the
attestation by digest ('provenix report <sha256>' prints them).

With --closure, every derivation of the closure that can be built here is
rebuilt, dependencies first, with progress on stderr. Fixed-output derivations
(checked by their declared hash) and derivations for another system are
skipped, with the reason. Each result is recorded as it lands, so an
interrupted run resumes where it stopped when started again.

Options:
  --closure [KIND]    rebuild the closure: build (default: every .drv it needs)
                      or runtime (the derivers of its runtime closure)
  --restart           start the closure run afresh instead of resuming it
  --html FILE         write the closure report as a self-contained HTML page
  -A, --attr ATTR     attribute of a .nix installable
  --key FILE          signing key (as for attest); env PROVENIX_KEY
  --builder-id URI    the rebuilder's id; env PROVENIX_BUILDER_ID
  --no-diffoscope     do not run diffoscope on differing outputs
  --diffoscope-timeout SECONDS  per differing output (default ${DIFFOSCOPE_TIMEOUT_S})
  --quiet             no progress on stderr
  --json              print the results as JSON

Exit status: 0 when everything rebuilt was reproducible, 1 when an output
differs or (with --closure) a rebuild failed, otherwise as for every command.

${SIGNING_HELP}`,
  options: {
    ...SIGNING_OPTIONS,
    closure: { type: "string" },
    restart: { type: "boolean" },
    html: { type: "string" },
    attr: { type: "string", short: "A" },
    key: { type: "string" },
    "builder-id": { type: "string" },
    "no-diffoscope": { type: "boolean" },
    "diffoscope-timeout": { type: "string" },
    quiet: { type: "boolean" },
  },
  optionalValues: { closure: { default: "build", choices: ["build", "runtime"] } },
  keyIsSigningKey: true,
  builderIdIsOwn: true,
  async run(ctx, inv) {
    const targets = needTargets(inv, "target to rebuild");
    const closure = inv.values.closure as string | undefined;
    if (closure !== undefined && closure !== "build" && closure !== "runtime") {
      throw new CliError("USAGE", `--closure takes build or runtime, not '${closure}'`);
    }
    if (inv.values.html !== undefined && closure === undefined) {
      throw new CliError("USAGE", "--html writes the closure report: use it with --closure");
    }
    const rctx = await rebuildContext(ctx, inv);
    const attribute = typeof inv.values.attr === "string" ? inv.values.attr : undefined;
    const drvs: string[] = [];
    for (const arg of targets) {
      for (const d of await derivationsFor(ctx, arg, {
        build: false,
        ...(attribute ? { attribute } : {}),
      })) {
        drvs.push(d.drvPath);
      }
    }
    if (closure === undefined) return rebuildEach(rctx, inv, drvs);
    return rebuildClosures(rctx, inv, drvs, closure);
  },
};

async function rebuildEach(rctx: RebuildContext, inv: Invocation, drvs: string[]) {
  const results: RebuildResult[] = [];
  for (const drv of drvs) {
    if (!inv.json && inv.values.quiet !== true) inv.io.err(`rebuilding ${drv}\n`);
    const r = await rebuildDerivation(rctx, drv);
    results.push(r);
    if (!inv.json) renderRebuild(r, inv, rctx.store.path);
  }
  if (inv.json) {
    printJson(
      inv,
      results.map((r) => ({
        derivation: r.drvPath,
        verdict: r.verdict,
        builtFirst: r.builtFirst,
        outputs: r.outputs,
        diff: r.diff,
        reports: r.reports,
        ...(r.diffoscopeNote !== undefined ? { diffoscopeNote: r.diffoscopeNote } : {}),
        attestation: { id: r.attestationId, keyid: r.keyid, store: rctx.store.path },
      })),
    );
  }
  return results.every((r) => r.verdict === "reproducible") ? EXIT.OK : EXIT.VERIFY_FAILED;
}

async function rebuildClosures(
  rctx: RebuildContext,
  inv: Invocation,
  roots: string[],
  kind: ClosureKind,
) {
  const tty = process.stderr.isTTY;
  const quiet = inv.values.quiet === true;
  const reports = [];
  let ok = true;
  for (const root of roots) {
    const started = Date.now();
    const r = await rebuildClosure(rctx, root, kind, {
      restart: inv.values.restart === true,
      progress: quiet
        ? undefined
        : ({ done, total, item }) => {
            const pct = Math.floor((done / total) * 100);
            const eta =
              done > 0 ? Math.round((((Date.now() - started) / done) * (total - done)) / 1000) : 0;
            if (tty) {
              const bar = "#".repeat(Math.floor(pct / 5)).padEnd(20, ".");
              inv.io.err(
                `\r[${bar}] ${done}/${total} ${pct}% eta ${eta}s ${item.status.padEnd(14)}`,
              );
              if (done === total) inv.io.err("\n");
            } else inv.io.err(`[${done}/${total}] ${item.status} ${item.drvPath}\n`);
          },
    });
    if (r.run.resumed && !quiet)
      inv.io.err(`resumed the unfinished run #${r.run.id} for ${root}\n`);
    const summary = summarize(root, kind, r.items);
    ok &&= summary.unreproducible === 0 && summary.failed === 0;
    if (typeof inv.values.html === "string") {
      writeFileSync(inv.values.html, renderHtml(summary, r.items));
    }
    if (!inv.json) inv.io.out(renderText(summary, r.items));
    reports.push({ run: r.run.id, resumed: r.run.resumed, summary, items: r.items });
  }
  if (inv.json) printJson(inv, reports);
  return ok ? EXIT.OK : EXIT.VERIFY_FAILED;
}

// --- consensus ----------------------------------------------------------------------

function bundleSources(args: string[]): ClaimSource[] {
  const files = args.flatMap((a) => {
    try {
      return statSync(a).isDirectory()
        ? readdirSync(a)
            .filter((f) => f.endsWith(".json"))
            .sort()
            .map((f) => join(a, f))
        : [a];
    } catch {
      throw new CliError("INPUT", `cannot read bundle ${a}`);
    }
  });
  return files.map((f) => ({ source: f, bytes: readFileSync(f) }));
}

function renderConsensus(c: PathConsensus, inv: Invocation): void {
  const out = (t: string) => inv.io.out(t + "\n");
  const state = { agree: "agree", disagree: "DISAGREE", none: "no trusted claims" }[c.status];
  out(`${c.path}: ${state}`);
  for (const g of c.groups) {
    out(
      `  sha256:${g.sha256}${g.local ? " (the local copy)" : ""}: ${g.identities.length} builder(s)`,
    );
    for (const i of g.identities) {
      out(`    ${i.signer} [${i.kinds.join(", ")}] ${i.builderIds.join(", ")}`);
    }
  }
}

const consensusCommand: Command = {
  usage: "Usage: provenix consensus [options] <./result | store path>...",
  help: `Gathers provenance and reproducibility attestations about each output from the
local attestation store and from bundle files (--bundle), keeps those whose
signature verifies with a trusted key, and groups the builders by the NAR hash
they claim to have produced: provenance claims its subjects; a reproducibility
attestation claims the rebuild it made (and the stored copy when its signer
built it). One trusted key is one builder identity, however many builder ids
it signs as. Attestations that do not verify are listed with the reason and
not counted.

Options:
  --bundle FILE|DIR   other builders' bundles (a directory: its *.json; repeatable)
  --oci REF           the Sigstore bundles attached to an image in a registry
                      (oci://registry/repository:tag or @sha256:...; repeatable),
                      such as 'provenix push' attaches
${TRUST_HELP}
${REGISTRY_HELP}
  --json              print the groups as JSON

Exit status: 0 when every output has trusted claims that all agree; 1 when
builders disagree or no trusted claim was found.`,
  options: {
    ...TRUST_OPTIONS,
    ...REGISTRY_OPTIONS,
    bundle: { type: "string", multiple: true },
    oci: { type: "string", multiple: true },
  },
  async run(ctx, inv) {
    const targets = needTargets(inv, "output to look up");
    const paths = targets.map((arg) => {
      const t = classifyTarget(arg, ctx.nix.storeDir);
      if (t.kind !== "output") {
        throw new CliError("INPUT", `consensus takes build outputs; '${arg}' is a ${t.kind}`);
      }
      return t.path;
    });
    const trustedKeys = await trustedKeysFrom(ctx, inv);
    const sources = bundleSources(strings(inv.values.bundle));
    for (const arg of strings(inv.values.oci)) sources.push(...(await imageBundles(inv, arg)));
    const r = await consensus({ nix: ctx.nix, store: ctx.store, trustedKeys }, paths, sources);
    if (inv.json) printJson(inv, r);
    else {
      for (const c of r.paths) renderConsensus(c, inv);
      for (const i of r.ignored) inv.io.out(`ignored ${i.source}: ${i.reason}\n`);
    }
    return r.paths.every((c) => c.status === "agree") ? EXIT.OK : EXIT.VERIFY_FAILED;
  },
};

/** The bundles attached to an image (referrers API, else the referrers tag), as claim sources. */
async function imageBundles(inv: Invocation, arg: string): Promise<ClaimSource[]> {
  const { ref, bundles } = await attachedBundles(inv, arg);
  return bundles.map((b) => ({
    source: `oci://${ref.registry}/${ref.repository}@${b.referrer}`,
    bytes: b.bundle,
  }));
}

// --- import / report ----------------------------------------------------------------

const importCommand: Command = {
  usage:
    "Usage: provenix import [options] <bundle.json | directory>... | --from <cache URL> <store path>...",
  help: `Verifies each bundle's signature with the trusted keys (before reading its
payload) and keeps the exact bytes in the attestation store, where verify
--require-reproduced-by and consensus find them. A bundle that does not verify
is refused with the reason; importing one twice keeps one copy.

Options:
${TRUST_HELP}
  --json              print the results as JSON

${CACHE_IMPORT_HELP}

Exit status: 0 when every bundle was imported (with --from: something was kept for
every path), 1 when one was refused.`,
  options: {
    ...TRUST_OPTIONS,
    from: { type: "string" },
    "cache-key": { type: "string", multiple: true },
    "cache-timeout": { type: "string" },
  },
  async run(ctx, inv) {
    if (typeof inv.values.from === "string") {
      return importFrom(ctx, inv, needTargets(inv, "store path to import for"));
    }
    const sources = bundleSources(needTargets(inv, "bundle to import"));
    const trustedKeys = await trustedKeysFrom(ctx, inv);
    const results = sources.map((s) => ({
      file: s.source,
      ...importBundle(ctx.store, Buffer.from(s.bytes), trustedKeys),
    }));
    if (inv.json) printJson(inv, results);
    else {
      for (const r of results) {
        inv.io.out(
          r.ok
            ? `${r.inserted ? "imported" : "already stored"} ${r.file} as #${r.id} (${r.predicateType})\n`
            : `refused ${r.file}: ${r.reason}\n`,
        );
      }
    }
    return results.every((r) => r.ok) ? EXIT.OK : EXIT.VERIFY_FAILED;
  },
};

const reportCommand: Command = {
  usage: "Usage: provenix report [-o FILE] <sha256>",
  help: `Reports (the per-file diff and diffoscope's output of a rebuild) are linked from
attestations by sha256 and kept in the attestation store. This prints one, or
writes it to a file; the bytes are checked against the digest.

Options:
  -o, --output FILE   write to FILE instead of stdout`,
  options: { output: { type: "string", short: "o" } },
  run(ctx, inv) {
    const [digest] = needTargets(inv, "report sha256");
    const sha = (digest ?? "").replace(/^sha256:/, "");
    if (!/^[0-9a-f]{64}$/.test(sha))
      throw new CliError("USAGE", `'${digest ?? ""}' is not a sha256`);
    const r = ctx.store.rebuilds.getReport(sha);
    if (!r) throw new CliError("INPUT", `no report sha256:${sha} in ${ctx.store.path}`);
    if (createHash("sha256").update(r.content).digest("hex") !== sha) {
      throw new StoreError(
        "CORRUPT",
        `report sha256:${sha} in ${ctx.store.path} does not match its digest`,
      );
    }
    if (typeof inv.values.output === "string") writeFileSync(inv.values.output, r.content);
    else inv.io.out(r.content.toString("utf8"));
    return EXIT.OK;
  },
};

export { rebuild as rebuildCommand, consensusCommand, importCommand, reportCommand };
