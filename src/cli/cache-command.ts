import { parsePublicKey, type PublicKey } from "../sign/index.js";
import {
  importFromCache,
  policyFromCache,
  publishPaths,
  verifyFromCache,
} from "../app/binary-cache.js";
import { importBundle } from "../app/consensus.js";
import { parseStorePath } from "../nix/index.js";
import { openBinaryCache } from "../system/binary-cache.js";
import { classifyTarget } from "../system/targets.js";
import { needTargets, printJson, strings, trustedKeysFrom } from "./args.js";
import type { Command, Invocation } from "./command.js";
import type { Context } from "./context.js";
import { CliError, EXIT } from "./errors.js";
import { loadPolicyOption, reportPolicyResult } from "./policy-command.js";

/** The cache of --from / --to, with --cache-timeout seconds per request (default 30). */
export function cacheFrom(inv: Invocation, url: string) {
  const t = inv.values["cache-timeout"];
  if (t !== undefined && (typeof t !== "string" || !/^[1-9][0-9]*$/.test(t))) {
    throw new CliError("USAGE", "--cache-timeout takes a number of seconds");
  }
  return openBinaryCache(url, { timeoutMs: t === undefined ? 30_000 : Number(t) * 1000 });
}

/** A store path named on the command line, which need not be in the local store. */
function storePathArg(ctx: Context, arg: string): string {
  if (arg.startsWith(ctx.nix.storeDir + "/")) return parseStorePath(arg, ctx.nix.storeDir).path;
  const t = classifyTarget(arg, ctx.nix.storeDir);
  if (t.kind === "output") return t.path;
  if (t.kind === "derivation") return t.drvPath;
  throw new CliError("INPUT", `'${arg}' is not a store path`);
}

/** Keys trusted to sign narinfos: --cache-key, and Nix's trusted-public-keys. */
async function cacheKeys(ctx: Context, inv: Invocation): Promise<PublicKey[]> {
  const given = strings(inv.values["cache-key"]).map((k) => parsePublicKey(k));
  return inv.values["no-nix-keys"] === true ? given : [...given, ...(await ctx.nixTrustedKeys())];
}

const CACHE_TRUST_HELP = `  --cache-key KEY     a trusted binary-cache key, name:base64 (repeatable)
  --cache-timeout S   seconds to wait for each answer of the cache (default 30)`;

export const CACHE_VERIFY_HELP = `From a binary cache (a pre-install check: the paths need not be in the local store):
  --from URL          file://, http:// or https:// cache: its narinfo, signed by a
                      trusted cache key (--cache-key, Nix's trusted-public-keys),
                      gives each path's NAR hash; its attestations (layout v1,
                      docs/binary-cache.md) must hold trusted provenance for it
                      (or, with --policy, satisfy the policy)
  --from-substituters the caches of Nix's substituters setting, each path from
                      the first that has it (file://, http://, https:// only)
  --closure runtime   also every path the narinfos reference
${CACHE_TRUST_HELP}`;

/** The caches of --from, or of Nix's substituters with --from-substituters. */
async function cachesFrom(ctx: Context, inv: Invocation) {
  if (inv.values["from-substituters"] !== true) return [cacheFrom(inv, inv.values.from as string)];
  if (inv.values.from !== undefined) {
    throw new CliError("USAGE", "use --from URL or --from-substituters, not both");
  }
  const setting = (await ctx.host.nixSettings()).all.substituters;
  const urls = (
    Array.isArray(setting)
      ? setting.map(String)
      : (typeof setting === "string" ? setting : "").split(/\s+/)
  )
    .filter((u) => /^(file|https?):\/\//.test(u))
    .map((u) => u.replace(/\?.*$/, ""));
  if (urls.length === 0) {
    throw new CliError(
      "USAGE",
      "Nix's substituters setting names no file://, http:// or https:// cache",
    );
  }
  return urls.map((u) => cacheFrom(inv, u));
}

/** `verify --from URL <store path>` (or --from-substituters), with or without --policy. */
export async function verifyFrom(
  ctx: Context,
  inv: Invocation,
  targets: string[],
): Promise<number> {
  const caches = await cachesFrom(ctx, inv);
  const closure = inv.values.closure !== undefined;
  if (closure && inv.values.closure !== "runtime") {
    throw new CliError("USAGE", "--from follows the runtime closure (narinfo References) only");
  }
  const keys = await cacheKeys(ctx, inv);
  const roots = targets.map((arg) => storePathArg(ctx, arg));
  if (typeof inv.values.policy === "string") {
    const loaded = await loadPolicyOption(ctx, inv);
    const { result, narHashes } = await policyFromCache(caches, roots, ctx.nix.storeDir, {
      cacheKeys: keys,
      closure,
      policy: loaded.policy,
    });
    const subjects = roots.map((name) => ({ name, sha256: narHashes.get(name) ?? "" }));
    if (typeof inv.values["emit-vsa"] === "string" && subjects.some((s) => s.sha256 === "")) {
      throw new CliError("INPUT", "no VSA: a root's narinfo could not be read from the cache");
    }
    return reportPolicyResult(ctx, inv, {
      loaded,
      scope: closure ? "runtime" : "none",
      subjects,
      result,
      from: caches.map((c) => c.url),
    });
  }
  for (const flag of ["emit-vsa", "verbose"]) {
    if (inv.values[flag] !== undefined) throw new CliError("USAGE", `--${flag} needs --policy`);
  }
  const trustedKeys = await trustedKeysFrom(ctx, inv);
  const builderIds = strings(inv.values["builder-id"]);
  const from = caches.map((c) => c.url).join(", ");
  const all = [];
  for (const root of roots) {
    const results = await verifyFromCache(caches, root, ctx.nix.storeDir, {
      trustedKeys,
      cacheKeys: keys,
      closure,
      ...(builderIds.length > 0 ? { builderIds } : {}),
    });
    const ok = results.every((r) => r.ok);
    all.push({
      root,
      cache: from,
      ok,
      paths: results.map(({ attestations, ...r }) => ({
        ...r,
        attestations: attestations.map((a) => ({
          sha256: a.sha256,
          ok: a.ok,
          reason: a.reason,
          signer: a.signer?.keyid,
        })),
      })),
    });
    if (!inv.json) {
      const failed = results.filter((r) => !r.ok);
      inv.io.out(
        `${ok ? "PASS" : "FAIL"} ${root} from ${from}: ${results.length - failed.length} of ${results.length} path(s) verified\n`,
      );
      for (const r of results) {
        if (r.ok) {
          const by = r.attestations.find((a) => a.ok)?.signer?.keyid ?? "?";
          inv.io.out(
            `  ok   ${r.path} (narinfo signed by ${r.narinfoKey ?? "?"}, provenance by ${by})\n`,
          );
        } else inv.io.out(`  FAIL ${r.path}: ${r.reason ?? "not verified"}\n`);
      }
    }
  }
  if (inv.json) printJson(inv, all);
  return all.every((r) => r.ok) ? EXIT.OK : EXIT.VERIFY_FAILED;
}

export const publishCommand: Command = {
  usage: "Usage: provenix publish [options] --to <cache URL> <./result | store path>...",
  help: `Uploads the attestations kept in the local store (provenance, SBOMs, rebuilds,
VSAs) for each path that the cache has (its .narinfo), beside the narinfo, in
layout v1 (docs/binary-cache.md): one file per bundle, by its sha256, then the
path's index. Nix keeps working on the cache unchanged. Publishing again writes
nothing new. Caches: file:// (a directory, as 'nix copy --to file://' writes it),
http:// and https:// (uploads with PUT, as Nix's own http store does).

Options:
  --to URL            the binary cache
  --closure           also every path of each target's runtime closure
  --all               every path in the attestation store that the cache has
  --cache-timeout S   seconds to wait for each answer of the cache (default 30)
  --json              print the result per path as JSON

Exit status: 0 when every target's attestations are in the cache (or it had none
to publish), 1 when a target is not in the cache, 7 when the cache failed.`,
  options: {
    to: { type: "string" },
    closure: { type: "boolean" },
    all: { type: "boolean" },
    "cache-timeout": { type: "string" },
  },
  async run(ctx, inv) {
    const to = inv.values.to;
    if (typeof to !== "string") throw new CliError("USAGE", "publish needs --to <cache URL>");
    const cache = cacheFrom(inv, to);
    let paths: string[];
    if (inv.values.all === true) {
      if (inv.positionals.length > 0) throw new CliError("USAGE", "--all takes no targets");
      paths = ctx.store.subjectNames().filter((p) => p.startsWith(ctx.nix.storeDir + "/"));
    } else {
      paths = needTargets(inv, "store path to publish").map((a) => storePathArg(ctx, a));
      if (inv.values.closure === true) paths = await ctx.nix.closure(paths);
    }
    const results = await publishPaths(cache, ctx.store, paths);
    if (inv.json) printJson(inv, { cache: cache.url, paths: results });
    else {
      for (const r of results) {
        const what =
          r.result === "published"
            ? `published ${r.bundles} attestation(s)`
            : r.result === "current"
              ? "already published"
              : r.result === "absent"
                ? "not in the cache: nothing published"
                : "no attestations to publish";
        if (inv.values.all !== true || r.result === "published") inv.io.out(`${r.path}: ${what}\n`);
      }
      const n = results.reduce((s, r) => s + r.bundles, 0);
      inv.io.out(`${n} attestation(s) published to ${cache.url}\n`);
    }
    const missing = inv.values.all === true ? [] : results.filter((r) => r.result === "absent");
    return missing.length === 0 ? EXIT.OK : EXIT.VERIFY_FAILED;
  },
};

export const CACHE_IMPORT_HELP = `From a binary cache:
  --from URL          keep the attestations the cache holds for each store path
                      (every kind), each only when its signature is trusted and
                      its subject is the path with the NAR hash of the cache's
                      narinfo, signed by a trusted cache key
${CACHE_TRUST_HELP}`;

/** `import --from URL <store path>...`. */
export async function importFrom(
  ctx: Context,
  inv: Invocation,
  targets: string[],
): Promise<number> {
  const cache = cacheFrom(inv, inv.values.from as string);
  const trustedKeys = await trustedKeysFrom(ctx, inv);
  const keys = await cacheKeys(ctx, inv);
  const results = [];
  for (const arg of targets) {
    const path = storePathArg(ctx, arg);
    results.push(
      await importFromCache(cache, path, ctx.nix.storeDir, { trustedKeys, cacheKeys: keys }, (b) =>
        importBundle(ctx.store, b, trustedKeys),
      ),
    );
  }
  if (inv.json) printJson(inv, { cache: cache.url, paths: results });
  else {
    for (const r of results) {
      for (const b of r.bundles) {
        inv.io.out(
          b.kept
            ? `${b.kept.inserted ? "imported" : "already stored"} ${b.predicateType} of ${r.path} as #${b.kept.id}\n`
            : `refused ${b.predicateType} of ${r.path} (${b.sha256.slice(0, 12)}): ${b.reason ?? ""}\n`,
        );
      }
      if (!r.ok) inv.io.out(`FAIL ${r.path}: ${r.reason ?? "nothing imported"}\n`);
    }
  }
  return results.every((r) => r.ok) ? EXIT.OK : EXIT.VERIFY_FAILED;
}
