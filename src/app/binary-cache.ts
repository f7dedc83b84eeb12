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
import {
  evaluatePolicy,
  type ClosurePath,
  type PathResult,
  type Policy,
  type PolicyResult,
} from "../policy/index.js";
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
 * names a bundle that is not there; then the index is read back. Idempotent.
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
  const readIndex = async () => {
    const bytes = await cache.get(indexFile(path));
    return bytes ? parseIndex(bytes, path) : undefined;
  };
  let current = await readIndex();
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
  // The index is a read-modify-write: read it back, and merge again when another
  // writer replaced it in between, so that what is reported published is listed.
  for (let attempt = 0; attempt < INDEX_ATTEMPTS; attempt++) {
    await cache.put(
      indexFile(path),
      indexBytes(withEntries(path, current, added)),
      "application/json",
    );
    current = await readIndex();
    const listed = new Set(current?.attestations.map((e) => e.sha256));
    if (added.every((e) => listed.has(e.sha256))) {
      return { path, result: "published", bundles: added.length };
    }
  }
  throw new CacheError(
    "WRITE_FAILED",
    `the attestation index of ${path} in ${cache.url} kept losing entries to other writers`,
  );
}

const INDEX_ATTEMPTS = 5;

/** publishPath for many paths, a few requests in flight at once; results in the order given. */
export async function publishPaths(
  cache: BinaryCache,
  store: AttestationStore,
  paths: readonly string[],
  concurrency = CONCURRENCY,
): Promise<PublishResult[]> {
  const results: PublishResult[] = new Array<PublishResult>(paths.length);
  let next = 0;
  const worker = async () => {
    while (next < paths.length) {
      const i = next++;
      results[i] = await publishPath(cache, store, paths[i] as string);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, paths.length) }, worker));
  return results;
}

export interface CachedPathVerification {
  readonly path: string;
  readonly ok: boolean;
  readonly reason?: string;
  /** The cache the path was read from. */
  readonly cache?: string;
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

/** What the cache holds for each path of a closure, read with a few requests in flight. */
export async function readClosureFromCache(
  caches: readonly BinaryCache[],
  roots: readonly string[],
  storeDir: string,
  o: { cacheKeys: readonly PublicKey[]; closure: boolean; concurrency?: number },
): Promise<Map<string, CachedPath>> {
  const read = new Map<string, CachedPath>();
  const queue = [...new Set(roots)];
  const seen = new Set(queue);
  let active = 0;
  let failure: Error | undefined;
  await new Promise<void>((done) => {
    const pump = () => {
      while (failure === undefined && active < (o.concurrency ?? CONCURRENCY) && queue.length > 0) {
        const path = queue.shift() as string;
        active++;
        readFromCaches(caches, path, storeDir, o.cacheKeys).then(
          (c) => {
            read.set(path, c);
            if (o.closure) {
              for (const ref of c.references) {
                if (!seen.has(ref)) {
                  seen.add(ref);
                  queue.push(ref);
                }
              }
            }
            active--;
            pump();
          },
          (e: unknown) => {
            failure ??= e instanceof Error ? e : new Error(String(e));
            active--;
            pump();
          },
        );
      }
      if (active === 0 && (queue.length === 0 || failure !== undefined)) done();
    };
    pump();
  });
  if (failure !== undefined) throw failure;
  return read;
}

/** Requests in flight at once when reading a closure (Nix's http-connections is 25). */
const CONCURRENCY = 16;

/** Roots first, then the closure by path. */
function ordered<T extends { path: string }>(roots: readonly string[], items: T[]): T[] {
  const rank = (p: string) => (roots.includes(p) ? roots.indexOf(p) : roots.length);
  return items.sort((a, b) => rank(a.path) - rank(b.path) || a.path.localeCompare(b.path));
}

/**
 * Verify a store path, and with `closure` every path it references, from a binary
 * cache alone: the narinfo's signature by a trusted cache key, then provenance from
 * the cache's attestations whose signature is trusted and whose subject is the path
 * with the narinfo's NAR hash. Nothing is read from the local store.
 */
export async function verifyFromCache(
  caches: readonly BinaryCache[],
  root: string,
  storeDir: string,
  o: CacheVerifyOptions,
): Promise<CachedPathVerification[]> {
  const read = await readClosureFromCache(caches, [root], storeDir, o);
  const results = [...read].map(([path, c]) => verifyCached(path, c, o));
  return ordered([root], results);
}

/**
 * A closure from a cache against a policy (docs/policy.md), as `verify --policy`
 * checks the local store: each path's NAR hash is the one of its narinfo (signed
 * by a trusted cache key), its attestations are those the cache holds for it, and
 * the narinfo's signatures count as a substituted path's would. A path whose
 * narinfo cannot be trusted fails with that reason.
 */
export async function policyFromCache(
  caches: readonly BinaryCache[],
  roots: readonly string[],
  storeDir: string,
  o: { cacheKeys: readonly PublicKey[]; closure: boolean; policy: Policy; now?: Date },
): Promise<{ result: PolicyResult; narHashes: Map<string, string> }> {
  const read = await readClosureFromCache(caches, roots, storeDir, o);
  const rootSet = new Set(roots);
  const closure: ClosurePath[] = ordered(
    [...roots],
    [...read].map(([path, c]) => ({ path, c })),
  ).map(({ path, c }) => {
    if (!c.ok) return { path, root: rootSet.has(path), attestations: [] };
    return {
      path,
      root: rootSet.has(path),
      sha256: c.info.narHash,
      info: {
        path,
        narHash: c.info.narHash,
        narSize: c.info.narSize,
        references: c.info.references,
        ...(c.info.deriver !== undefined ? { deriver: c.info.deriver } : {}),
        ...(c.info.ca !== undefined ? { ca: c.info.ca } : {}),
        ultimate: false,
        signatures: c.info.sigs,
      },
      attestations: c.bundles.flatMap((e, i) =>
        e.bundle ? [{ id: i, bundle: e.bundle, label: `sha256:${e.sha256.slice(0, 12)}` }] : [],
      ),
    };
  });
  const evaluated = evaluatePolicy(o.policy, closure, { now: o.now ?? new Date(), digest: sha256 });
  // A path the cache could not vouch for fails with the cache's reason.
  const paths = evaluated.paths.map((p): PathResult => {
    const c = read.get(p.path);
    return c && !c.ok ? { path: p.path, root: p.root, ok: false, reason: c.reason, used: [] } : p;
  });
  const narHashes = new Map<string, string>();
  for (const [path, c] of read) if (c.ok) narHashes.set(path, c.info.narHash);
  return {
    result: { ...evaluated, ok: evaluated.ok && paths.every((p) => p.ok), paths },
    narHashes,
  };
}

/** What a cache holds for a path: its signed narinfo, and the bundles its index names. */
export type CachedPath =
  | {
      ok: false;
      reason: string;
      /** The cache that has the path's narinfo (none when no cache has it). */
      cache?: string;
      narHash?: string;
      narinfoKey?: string;
      references: readonly string[];
    }
  | {
      ok: true;
      cache: string;
      narHash: string;
      narinfoKey: string;
      info: NarInfo;
      references: readonly string[];
      /** Whether the cache has an attestation index for the path at all. */
      indexed: boolean;
      /** Each index entry, with its bytes when they are there and match its name. */
      bundles: readonly (IndexEntry & { bundle?: Buffer; problem?: string })[];
    };

/**
 * A path from the first cache that has its narinfo, in the order given (as Nix asks
 * its substituters): its attestations must come from the same cache.
 */
async function readFromCaches(
  caches: readonly BinaryCache[],
  path: string,
  storeDir: string,
  cacheKeys: readonly PublicKey[],
): Promise<CachedPath> {
  for (const cache of caches) {
    const c = await readCachedPath(cache, path, storeDir, cacheKeys);
    if (c.ok || c.cache !== undefined || caches.length === 1) return c;
  }
  return {
    ok: false,
    reason: `${path} is in none of ${caches.map((c) => c.url).join(", ")} (no ${narinfoFile(path)})`,
    references: [],
  };
}

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
  const at = { cache: cache.url };
  let info: NarInfo;
  try {
    info = parseNarInfo(bytes.toString("utf8"), storeDir, `${cache.url}/${narinfoFile(path)}`);
  } catch (e) {
    if (e instanceof NixError) return { ok: false, reason: e.message, ...at, references: none };
    throw e;
  }
  if (info.storePath !== path) {
    return {
      ok: false,
      reason: `${cache.url}/${narinfoFile(path)} is about ${info.storePath}, not ${path}`,
      ...at,
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
      reason: `the narinfo of ${path} in ${cache.url} has no signature by a trusted cache key (${info.sigs.length} signature(s))`,
      ...at,
      references: none,
    };
  }
  const base = { ...at, narHash: info.narHash, narinfoKey: key };
  const references = info.references.filter((r) => r !== path);
  const index = await cache.get(indexFile(path));
  if (!index) return { ok: true, ...base, info, references, indexed: false, bundles: [] };
  let entries: readonly IndexEntry[];
  try {
    entries = parseIndex(index, path).attestations;
  } catch (e) {
    if (e instanceof CacheError) return { ok: false, reason: e.message, ...base, references };
    throw e;
  }
  const bundles = await Promise.all(
    entries.map(async (e) => {
      const bundle = await cache.get(e.file);
      if (!bundle) return { ...e, problem: `${e.file} is missing from the cache` };
      if (sha256(bundle) !== e.sha256) {
        return { ...e, problem: `${e.file} does not have the sha256 its name says` };
      }
      return { ...e, bundle };
    }),
  );
  return { ok: true, ...base, info, references, indexed: true, bundles };
}

function verifyCached(path: string, c: CachedPath, o: CacheVerifyOptions): CachedPathVerification {
  if (!c.ok) {
    return {
      path,
      ok: false,
      reason: c.reason,
      ...(c.cache !== undefined ? { cache: c.cache } : {}),
      ...(c.narHash !== undefined ? { narHash: c.narHash } : {}),
      ...(c.narinfoKey !== undefined ? { narinfoKey: c.narinfoKey } : {}),
      attestations: [],
    };
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
    : !c.indexed
      ? `no attestations for ${path} in ${c.cache}`
      : checks.length === 0
        ? `no provenance among the attestations of ${path} in ${c.cache}`
        : checks[0]?.reason;
  return {
    path,
    ok: good !== undefined,
    ...(reason ? { reason } : {}),
    cache: c.cache,
    narHash: c.narHash,
    narinfoKey: c.narinfoKey,
    attestations: checks,
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
