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
import {
  narinfoFingerprint,
  NixError,
  parseNarInfo,
  splitNixSignature,
  type NarInfo,
} from "../nix/index.js";
import { verifySignature, type PublicKey } from "../sign/index.js";
import type { AttestationStore } from "../store/index.js";
import type { BinaryCache } from "../system/binary-cache.js";
import { verifyAttestation, type AttestationVerification } from "../verify/index.js";

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

/** The cache key that signed this narinfo, if any trusted one did. */
function narinfoSigner(info: NarInfo, keys: readonly PublicKey[]): string | undefined {
  const fingerprint = Buffer.from(
    narinfoFingerprint(info.storePath, info.narHash, info.narSize, info.references),
  );
  for (const sig of info.sigs) {
    const s = splitNixSignature(sig);
    if (!s) continue;
    for (const k of keys.filter((k) => k.keyid === s.keyName)) {
      if (verifySignature(k, fingerprint, s.signature)) return k.keyid;
    }
  }
  return undefined;
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

async function verifyOne(
  cache: BinaryCache,
  path: string,
  storeDir: string,
  o: CacheVerifyOptions,
): Promise<{ result: CachedPathVerification; references: readonly string[] }> {
  const fail = (reason: string, extra: Partial<CachedPathVerification> = {}) => ({
    result: { path, ok: false, reason, attestations: [], ...extra },
    references: [] as string[],
  });
  const bytes = await cache.get(narinfoFile(path));
  if (!bytes) return fail(`${path} is not in ${cache.url} (no ${narinfoFile(path)})`);
  let info: NarInfo;
  try {
    info = parseNarInfo(bytes.toString("utf8"), storeDir, `${cache.url}/${narinfoFile(path)}`);
  } catch (e) {
    if (e instanceof NixError) return fail(e.message);
    throw e;
  }
  if (info.storePath !== path) {
    return fail(`${cache.url}/${narinfoFile(path)} is about ${info.storePath}, not ${path}`);
  }
  const key = narinfoSigner(info, o.cacheKeys);
  if (!key) {
    return fail(
      `the narinfo of ${path} has no signature by a trusted cache key (${info.sigs.length} signature(s))`,
    );
  }
  const base = { narHash: info.narHash, narinfoKey: key };
  const references = info.references.filter((r) => r !== path);
  const indexBytes_ = await cache.get(indexFile(path));
  if (!indexBytes_) {
    return {
      result: {
        path,
        ok: false,
        reason: `no attestations for ${path} in ${cache.url}`,
        ...base,
        attestations: [],
      },
      references,
    };
  }
  let entries: readonly IndexEntry[];
  try {
    entries = parseIndex(indexBytes_, path).attestations;
  } catch (e) {
    if (e instanceof CacheError) return { ...fail(e.message, base), references };
    throw e;
  }
  const checks: (AttestationVerification & { sha256: string })[] = [];
  for (const e of entries.filter((x) => x.predicateType === SLSA_PROVENANCE_V1)) {
    const bundle = await cache.get(e.file);
    if (!bundle) {
      checks.push({
        sha256: e.sha256,
        ok: false,
        checks: [],
        reason: `${e.file} is missing from the cache`,
      });
      continue;
    }
    if (sha256(bundle) !== e.sha256) {
      checks.push({
        sha256: e.sha256,
        ok: false,
        checks: [],
        reason: `${e.file} does not have the sha256 its name says`,
      });
      continue;
    }
    checks.push({
      sha256: e.sha256,
      ...verifyAttestation(bundle, {
        trustedKeys: o.trustedKeys,
        predicateType: SLSA_PROVENANCE_V1,
        subject: { name: path, sha256: info.narHash },
        ...(o.builderIds && o.builderIds.length > 0 ? { builderIds: o.builderIds } : {}),
      }),
    });
  }
  const good = checks.find((c) => c.ok);
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
      ...base,
      attestations: checks,
    },
    references,
  };
}
