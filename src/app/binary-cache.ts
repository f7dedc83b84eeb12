// Provenance travels with the binaries: publishing the attestations of store paths
// to the binary cache that serves them (layout v1, src/cache), and verifying a
// closure from a cache before it is in the local store.
import { createHash } from "node:crypto";
import {
  bundleFile,
  CacheError,
  indexBytes,
  indexFile,
  narinfoFile,
  parseIndex,
  withEntries,
  type IndexEntry,
} from "../cache/index.js";
import { SLSA_PROVENANCE_V1 } from "../attest/index.js";
import { NixError, parseNarInfo, type NarInfo } from "../nix/index.js";
import type { PublicKey } from "../sign/index.js";
import type { AttestationStore } from "../store/index.js";
import type { BinaryCache } from "../system/binary-cache.js";
import { narinfoSigner, verifyAttestation, type AttestationVerification } from "../verify/index.js";

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

export interface PublishResult {
  readonly path: string;
  /** published: bundles written now; current: all there already; absent: not in the cache. */
  readonly result: "published" | "current" | "absent" | "nothing";
  readonly bundles: number;
}

/**
 * Publish the attestations kept for `path` to a cache that has the path (its
 * narinfo): the bundles first, by digest, then the index, so that the index never
 * names a bundle that is not there. Idempotent.
 */
export async function publishPath(
  cache: BinaryCache,
  store: AttestationStore,
  path: string,
): Promise<PublishResult> {
  if ((await cache.get(narinfoFile(path))) === undefined) {
    return { path, result: "absent", bundles: 0 };
  }
  const stored = store.find({ subjectName: path });
  if (stored.length === 0) return { path, result: "nothing", bundles: 0 };
  const currentBytes = await cache.get(indexFile(path));
  const current = currentBytes ? parseIndex(currentBytes, path) : undefined;
  const have = new Set(current?.attestations.map((e) => e.sha256));
  const added: IndexEntry[] = [];
  for (const a of stored) {
    const digest = sha256(a.bundle);
    const entry = {
      sha256: digest,
      predicateType: a.predicateType,
      file: bundleFile(path, digest),
    };
    if (have.has(digest)) continue;
    await cache.put(entry.file, a.bundle, "application/vnd.dev.sigstore.bundle.v0.3+json");
    added.push(entry);
  }
  if (added.length === 0) return { path, result: "current", bundles: 0 };
  await cache.put(
    indexFile(path),
    indexBytes(withEntries(path, current, added)),
    "application/json",
  );
  return { path, result: "published", bundles: added.length };
}

export interface CachedPathVerification {
  readonly path: string;
  readonly ok: boolean;
  readonly reason?: string;
  /** The narinfo's NAR hash (hex), once the narinfo was read and its signature checked. */
  readonly narHash?: string;
  /** The cache key that signed the narinfo. */
  readonly narinfoKey?: string;
  readonly attestations: readonly (AttestationVerification & { readonly sha256: string })[];
}

export interface CacheVerifyOptions {
  /** Keys trusted to sign provenance. */
  readonly trustedKeys: readonly PublicKey[];
  /** Keys trusted to sign narinfos (the cache's; Nix's trusted-public-keys by default). */
  readonly cacheKeys: readonly PublicKey[];
  readonly builderIds?: readonly string[];
  /** Follow the narinfo References to the whole runtime closure. */
  readonly closure: boolean;
}

/**
 * Verify a store path, and with `closure` every path it references, from a binary
 * cache alone: the narinfo's signature by a trusted cache key, then provenance from
 * the cache's attestations whose signature is trusted and whose subject is the path
 * with the narinfo's NAR hash. Nothing is read from the local store.
 */
export async function verifyFromCache(
  cache: BinaryCache,
  root: string,
  storeDir: string,
  o: CacheVerifyOptions,
): Promise<CachedPathVerification[]> {
  const results: CachedPathVerification[] = [];
  const queue = [root];
  const seen = new Set(queue);
  while (queue.length > 0) {
    const path = queue.shift() as string;
    const r = await verifyOne(cache, path, storeDir, o);
    results.push(r.result);
    if (!o.closure) continue;
    for (const ref of r.references) {
      if (!seen.has(ref)) {
        seen.add(ref);
        queue.push(ref);
      }
    }
  }
  return results.sort((a, b) =>
    a.path === root ? -1 : b.path === root ? 1 : a.path.localeCompare(b.path),
  );
}

/** What a cache holds for a path: its signed narinfo, and the bundles its index names. */
type CachedPath =
  | {
      ok: false;
      reason: string;
      narHash?: string;
      narinfoKey?: string;
      references: readonly string[];
    }
  | {
      ok: true;
      narHash: string;
      narinfoKey: string;
      references: readonly string[];
      /** Each index entry, with its bytes when they are there and match its name. */
      bundles: readonly (IndexEntry & { bundle?: Buffer; problem?: string })[];
    };

/** Read a path's narinfo (signature checked) and attestations from a cache. */
async function readCachedPath(
  cache: BinaryCache,
  path: string,
  storeDir: string,
  cacheKeys: readonly PublicKey[],
): Promise<CachedPath> {
  const none: readonly string[] = [];
  const bytes = await cache.get(narinfoFile(path));
  if (!bytes) {
    return {
      ok: false,
      reason: `${path} is not in ${cache.url} (no ${narinfoFile(path)})`,
      references: none,
    };
  }
  let info: NarInfo;
  try {
    info = parseNarInfo(bytes.toString("utf8"), storeDir, `${cache.url}/${narinfoFile(path)}`);
  } catch (e) {
    if (e instanceof NixError) return { ok: false, reason: e.message, references: none };
    throw e;
  }
  if (info.storePath !== path) {
    return {
      ok: false,
      reason: `${cache.url}/${narinfoFile(path)} is about ${info.storePath}, not ${path}`,
      references: none,
    };
  }
  const key = narinfoSigner(
    {
      path: info.storePath,
      narHash: info.narHash,
      narSize: info.narSize,
      references: info.references,
    },
    info.sigs,
    cacheKeys,
  );
  if (!key) {
    return {
      ok: false,
      reason: `the narinfo of ${path} has no signature by a trusted cache key (${info.sigs.length} signature(s))`,
      references: none,
    };
  }
  const base = { narHash: info.narHash, narinfoKey: key };
  const references = info.references.filter((r) => r !== path);
  const index = await cache.get(indexFile(path));
  if (!index) {
    return {
      ok: false,
      reason: `no attestations for ${path} in ${cache.url}`,
      ...base,
      references,
    };
  }
  let entries: readonly IndexEntry[];
  try {
    entries = parseIndex(index, path).attestations;
  } catch (e) {
    if (e instanceof CacheError) return { ok: false, reason: e.message, ...base, references };
    throw e;
  }
  const bundles = [];
  for (const e of entries) {
    const bundle = await cache.get(e.file);
    if (!bundle) bundles.push({ ...e, problem: `${e.file} is missing from the cache` });
    else if (sha256(bundle) !== e.sha256) {
      bundles.push({ ...e, problem: `${e.file} does not have the sha256 its name says` });
    } else bundles.push({ ...e, bundle });
  }
  return { ok: true, ...base, references, bundles };
}

async function verifyOne(
  cache: BinaryCache,
  path: string,
  storeDir: string,
  o: CacheVerifyOptions,
): Promise<{ result: CachedPathVerification; references: readonly string[] }> {
  const c = await readCachedPath(cache, path, storeDir, o.cacheKeys);
  const { references } = c;
  if (!c.ok) {
    const result: CachedPathVerification = {
      path,
      ok: false,
      reason: c.reason,
      ...(c.narHash !== undefined ? { narHash: c.narHash } : {}),
      ...(c.narinfoKey !== undefined ? { narinfoKey: c.narinfoKey } : {}),
      attestations: [],
    };
    return { result, references };
  }
  const checks: (AttestationVerification & { sha256: string })[] = [];
  for (const e of c.bundles.filter((x) => x.predicateType === SLSA_PROVENANCE_V1)) {
    if (!e.bundle) {
      checks.push({ sha256: e.sha256, ok: false, checks: [], reason: e.problem ?? "missing" });
      continue;
    }
    checks.push({
      sha256: e.sha256,
      ...verifyAttestation(e.bundle, {
        trustedKeys: o.trustedKeys,
        predicateType: SLSA_PROVENANCE_V1,
        subject: { name: path, sha256: c.narHash },
        ...(o.builderIds && o.builderIds.length > 0 ? { builderIds: o.builderIds } : {}),
      }),
    });
  }
  const good = checks.find((x) => x.ok);
  const reason = good
    ? undefined
    : checks.length === 0
      ? `no provenance among the attestations of ${path} in ${cache.url}`
      : checks[0]?.reason;
  return {
    result: {
      path,
      ok: good !== undefined,
      ...(reason ? { reason } : {}),
      narHash: c.narHash,
      narinfoKey: c.narinfoKey,
      attestations: checks,
    },
    references,
  };
}

export interface ImportedFromCache {
  readonly path: string;
  readonly ok: boolean;
  readonly reason?: string;
  /** Per bundle: kept (new or already there), or refused with the reason. */
  readonly bundles: readonly {
    sha256: string;
    predicateType: string;
    kept?: { id: number; inserted: boolean };
    reason?: string;
  }[];
}

/**
 * Keep a path's attestations from a cache in the local store (every kind: provenance,
 * SBOMs, rebuilds, VSAs), each only when its signature is trusted and its subject is
 * the path with the NAR hash of the cache's signed narinfo.
 */
export async function importFromCache(
  cache: BinaryCache,
  path: string,
  storeDir: string,
  o: { trustedKeys: readonly PublicKey[]; cacheKeys: readonly PublicKey[] },
  keep: (
    bundle: Buffer,
  ) => { ok: true; id: number; inserted: boolean } | { ok: false; reason: string },
): Promise<ImportedFromCache> {
  const c = await readCachedPath(cache, path, storeDir, o.cacheKeys);
  if (!c.ok) return { path, ok: false, reason: c.reason, bundles: [] };
  const bundles = c.bundles.map((e): ImportedFromCache["bundles"][number] => {
    const entry = { sha256: e.sha256, predicateType: e.predicateType };
    if (!e.bundle) return { ...entry, reason: e.problem ?? "missing" };
    const v = verifyAttestation(e.bundle, {
      trustedKeys: o.trustedKeys,
      subject: { name: path, sha256: c.narHash },
    });
    if (!v.ok) return { ...entry, reason: v.reason ?? "not verified" };
    const k = keep(e.bundle);
    return k.ok
      ? { ...entry, kept: { id: k.id, inserted: k.inserted } }
      : { ...entry, reason: k.reason };
  });
  const kept = bundles.filter((b) => b.kept).length;
  return {
    path,
    ok: kept > 0,
    ...(kept === 0
      ? { reason: bundles[0]?.reason ?? `no attestations for ${path} in ${cache.url}` }
      : {}),
    bundles,
  };
}
