import { hostname } from "node:os";
import { readFileSync, writeFileSync } from "node:fs";
import {
  defaultResourceUri,
  emitVsa,
  verifyWithPolicy,
  type ClosureScope,
} from "../app/policy-verify.js";
import { NixError } from "../nix/index.js";
import {
  applyVulnerabilities,
  verifyVsa,
  type PathResult,
  type PolicyResult,
} from "../policy/index.js";
import { closurePackages, scan } from "../app/vulns.js";
import { VulnDb } from "../system/vuln-db.js";
import { applyVex } from "../vulns/index.js";
import { metaFor } from "./sbom-command.js";
import { vulnDbPath } from "./config.js";
import type { LoadedPolicy } from "../system/policy-file.js";
import { classifyTarget } from "../system/targets.js";
import { hashNar } from "../system/nar-dump.js";
import { VERSION } from "../version.js";
import { printJson, trustedKeysFrom } from "./args.js";
import type { Invocation } from "./command.js";
import type { Context } from "./context.js";
import { CliError, EXIT } from "./errors.js";
import { trustMaterial } from "./sigstore-options.js";

export const DEFAULT_VERIFIER_ID = () => `https://provenix.dev/verifiers/provenix/v1#${hostname()}`;

/** The store outputs a verify target stands for (./result, an output, or a .drv's outputs). */
async function rootsOf(ctx: Context, args: readonly string[]): Promise<string[]> {
  const roots: string[] = [];
  for (const arg of args) {
    const t = classifyTarget(arg, ctx.nix.storeDir);
    if (t.kind === "output") roots.push(t.path);
    else if (t.kind === "derivation") {
      const outs = [...(await ctx.nix.derivationOutputs(t.drvPath)).values()];
      if (outs.length === 0)
        throw new NixError("NOT_BUILT", `${t.drvPath} has no outputs in the store`);
      roots.push(...outs);
    } else {
      throw new CliError("INPUT", `--policy and --vsa check store paths; '${arg}' is a ${t.kind}`);
    }
  }
  return roots;
}

function renderResult(p: PathResult, inv: Invocation, verbose: boolean): void {
  if (p.ok && !verbose) return;
  const what = p.ok
    ? `${p.basis ?? ""}${p.detail ? `: ${p.detail}` : ""}${p.basis === "excepted" ? `: ${p.reason ?? ""}` : ""}${p.level !== undefined && p.basis === "provenance" ? ` (L${p.level})` : ""}`
    : (p.reason ?? "failed");
  inv.io.out(`  ${p.ok ? "ok  " : "FAIL"} ${p.path}${p.root ? " (artifact)" : ""}: ${what}\n`);
}

/** `provenix verify --policy`: the artifact and its closure against a policy file. */
export async function verifyPolicy(
  ctx: Context,
  inv: Invocation,
  targets: string[],
): Promise<number> {
  const scope = (inv.values.closure as ClosureScope | undefined) ?? "none";
  if (!["none", "runtime", "build"].includes(scope)) {
    throw new CliError("USAGE", `--closure takes runtime or build, not '${scope}'`);
  }
  const loaded = await loadPolicyOption(ctx, inv);
  const roots = await rootsOf(ctx, targets);
  const vctx = { nix: ctx.nix, store: ctx.store, rehash: inv.values["no-rehash"] !== true };
  let result = await verifyWithPolicy(vctx, loaded.policy, roots, scope);
  const vulns = loaded.policy.require.vulnerabilities;
  if (vulns && !result.reason) {
    const db = VulnDb.open(vulnDbPath(inv.values.db));
    try {
      const infos = await ctx.nix.pathInfos(roots);
      const derivations = roots.flatMap((r) => infos.get(r)?.deriver ?? []);
      // The artifact alone is its own packages: its runtime closure is what "none" scans.
      const kind = scope === "build" ? "build" : "runtime";
      const packages = await closurePackages(
        ctx.nix,
        { outputs: roots, derivations },
        kind,
        await metaFor({ outputs: roots, derivations }, inv.values.meta),
      );
      const scanned = scan(db, packages);
      const triaged = applyVex(scanned.findings, vulns.vex, {
        ...(vulns.vexMaxAgeDays !== undefined ? { maxAgeDays: vulns.vexMaxAgeDays } : {}),
      });
      const updatedAt = db.updatedAt();
      result = applyVulnerabilities(result, triaged.findings, vulns, {
        ...(updatedAt ? { updatedAt } : {}),
        now: new Date(),
      });
    } finally {
      db.close();
    }
  }
  const infos = await ctx.nix.pathInfos(roots);
  const subjects = roots.map((name) => ({ name, sha256: infos.get(name)?.narHash ?? "" }));
  return reportPolicyResult(ctx, inv, { loaded, scope, subjects, result });
}

/** The policy file of --policy. */
export async function loadPolicyOption(ctx: Context, inv: Invocation): Promise<LoadedPolicy> {
  // The policy reader (a YAML parser, a JSON Schema validator) loads only when a policy is read.
  const { loadPolicy } = await import("../system/policy-file.js");
  return loadPolicy(
    inv.values.policy as string,
    () => ctx.nixTrustedKeys(),
    () => trustMaterial(inv),
  );
}

/**
 * Print a policy result (text or --json) and, with --emit-vsa, sign a VSA of it
 * about the roots; the exit status says whether it passed.
 */
export async function reportPolicyResult(
  ctx: Context,
  inv: Invocation,
  r: {
    loaded: LoadedPolicy;
    scope: string;
    /** The roots, with the NAR hashes the VSA names. */
    subjects: readonly { name: string; sha256: string }[];
    result: PolicyResult;
    /** Where the closure was read, when not the local store (printed and in --json). */
    from?: readonly string[];
  },
): Promise<number> {
  const { loaded, scope, result } = r;
  const roots = r.subjects.map((s) => s.name);
  let vsa: { file: string; id: number } | undefined;
  if (typeof inv.values["emit-vsa"] === "string") {
    if (typeof inv.values["signing-key"] === "string") {
      ctx.config = { ...ctx.config, key: inv.values["signing-key"] };
    }
    const signer = await ctx.bundleSigner(inv, typeof inv.values["signing-key"] === "string");
    const out = inv.values["emit-vsa"];
    const v = await emitVsa(ctx.store, r.subjects, result, {
      signer,
      verifierId: (inv.values["verifier-id"] as string | undefined) ?? DEFAULT_VERIFIER_ID(),
      verifierVersion: { provenix: VERSION },
      resourceUri:
        (inv.values["resource-uri"] as string | undefined) ?? defaultResourceUri(roots[0] ?? ""),
      policy: {
        uri: (inv.values["policy-uri"] as string | undefined) ?? loaded.uri,
        sha256: loaded.sha256,
      },
    });
    writeFileSync(out, v.bundle);
    vsa = { file: out, id: v.id };
  }
  const failing = result.paths.filter((p) => !p.ok);
  if (inv.json) {
    printJson(inv, {
      ok: result.ok,
      reason: result.reason,
      policy: loaded,
      scope,
      roots,
      ...(r.from ? { from: r.from } : {}),
      paths: result.paths,
      vsa,
    });
  } else {
    const policy = { uri: loaded.uri, sha256: loaded.sha256 };
    inv.io.out(
      `${result.ok ? "PASS" : "FAIL"} ${roots.join(" ")}${r.from ? ` from ${r.from.join(", ")}` : ""} against policy ${policy.uri} (sha256:${policy.sha256.slice(0, 12)})\n`,
    );
    if (result.reason) inv.io.out(`  reason: ${result.reason}\n`);
    else {
      const count = (b: string) => result.paths.filter((p) => p.ok && p.basis === b).length;
      inv.io.out(
        `  ${result.paths.length} path(s) (${scope === "none" ? "the artifact only" : `${scope} closure`}): ` +
          `${count("provenance")} by provenance, ${count("substituted")} substituted with a trusted signature, ` +
          `${count("source")} sources named by provenance, ${count("excepted")} excepted, ${failing.length} failing\n`,
      );
      for (const p of result.paths) renderResult(p, inv, inv.values.verbose === true);
    }
    if (vsa)
      inv.io.out(
        `VSA (${result.ok ? "PASSED" : "FAILED"}) written to ${vsa.file}, stored as #${vsa.id}\n`,
      );
  }
  return result.ok ? EXIT.OK : EXIT.VERIFY_FAILED;
}

/** `provenix verify --vsa FILE <artifact>`: a VSA checked by the spec's procedure. */
export async function verifyVsaFile(
  ctx: Context,
  inv: Invocation,
  targets: string[],
): Promise<number> {
  const file = inv.values.vsa as string;
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch {
    throw new CliError("INPUT", `cannot read VSA ${file}`);
  }
  const level = inv.values["vsa-level"] as string | undefined;
  if (level !== undefined && !["0", "1", "2", "3"].includes(level)) {
    throw new CliError("USAGE", "--vsa-level takes 0, 1, 2 or 3");
  }
  const trustedKeys = await trustedKeysFrom(ctx, inv);
  const roots = await rootsOf(ctx, targets);
  const results = [];
  for (const path of roots) {
    const sha256 =
      inv.values["no-rehash"] === true
        ? (await ctx.nix.pathInfos([path])).get(path)?.narHash
        : hashNar(path).sha256;
    const r = verifyVsa(bytes, {
      trustedKeys,
      subject: { name: path, sha256: sha256 ?? "" },
      ...(typeof inv.values["verifier-id"] === "string"
        ? { verifierId: inv.values["verifier-id"] }
        : {}),
      resourceUri: (inv.values["resource-uri"] as string | undefined) ?? defaultResourceUri(path),
      ...(level !== undefined ? { minLevel: Number(level) } : {}),
    });
    results.push({ path, ...r });
    if (!inv.json) {
      inv.io.out(`${r.ok ? "PASS" : "FAIL"} ${path}: VSA ${file}\n`);
      for (const c of r.checks)
        inv.io.out(`  ${c.ok ? "ok  " : "FAIL"} ${c.name.padEnd(13)} ${c.detail}\n`);
      if (!r.ok) inv.io.out(`  reason: ${r.reason ?? "unknown"}\n`);
    }
  }
  if (inv.json)
    printJson(
      inv,
      results.map(({ path, ok, reason, checks }) => ({ path, ok, reason, checks })),
    );
  return results.every((r) => r.ok) ? EXIT.OK : EXIT.VERIFY_FAILED;
}
