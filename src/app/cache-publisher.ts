import { CacheError } from "../cache/index.js";
import { nextAttempt, type RetryPolicy } from "../chains/index.js";
import type { AttestationStore } from "../store/index.js";
import type { BinaryCache } from "../system/binary-cache.js";
import { publishPath } from "./binary-cache.js";
import type { ChainsEvent, Pusher } from "./chains.js";

/**
 * Chains mode for binary caches (`daemon --publish-to`): every attested output is
 * queued for the cache in the same transaction as its attestation, and its
 * attestations are published (src/app/binary-cache.ts publishPath) once the cache
 * has the path's narinfo, retried with backoff until then. A row is marked
 * published only after the cache holds the bundles and an index naming them, so a
 * crash at any point leaves the row pending and the next daemon publishes again
 * (publishing is idempotent). The outputs need no GC root for this: what is
 * published comes from the attestation store, not the Nix store.
 */
export class CachePublisher implements Pusher {
  constructor(
    private readonly deps: {
      readonly store: AttestationStore;
      readonly cache: BinaryCache;
      readonly emit: (e: ChainsEvent) => void;
      readonly now?: () => number;
    },
    private readonly retry: RetryPolicy,
  ) {}

  private now(): number {
    return this.deps.now?.() ?? Date.now();
  }

  enqueue(paths: readonly string[]): string[] {
    for (const p of paths)
      this.deps.store.pushes.enqueue(p, this.deps.cache.url, this.now(), "cache");
    return [];
  }

  owes(): boolean {
    return false;
  }

  /** Publish what is due; returns how many rows were tried. */
  async work(limit = 16): Promise<number> {
    const { store, cache, emit } = this.deps;
    const due = store.pushes.due("cache", this.now(), limit);
    for (const row of due) {
      let failure: { error: string; permanent: boolean };
      try {
        const r = await publishPath(cache, store, row.path);
        if (r.result === "nothing") {
          const now = this.now();
          const why = "no attestations in the store";
          store.pushes.failure(
            row.path,
            row.destination,
            why,
            { terminal: true, nextAttemptAt: now },
            true,
            now,
          );
          emit({
            event: "publish-skipped",
            level: "warn",
            path: row.path,
            cache: cache.url,
            error: why,
          });
          continue;
        }
        if (r.result !== "absent") {
          store.pushes.pushed(row.path, row.destination, null, null, this.now());
          emit({
            event: "published",
            level: "info",
            path: row.path,
            cache: cache.url,
            bundles: r.bundles,
          });
          continue;
        }
        // Not there yet: a post-build hook or a farm copies paths to caches after the build.
        failure = {
          error: `${row.path} is not in ${cache.url} (no narinfo yet)`,
          permanent: false,
        };
      } catch (e) {
        if (!(e instanceof CacheError)) throw e;
        failure = { error: e.message, permanent: e.code === "BAD_URL" };
      }
      const now = this.now();
      const next = nextAttempt(row.attempts + 1, now, this.retry, failure.permanent);
      store.pushes.failure(row.path, row.destination, failure.error, next, false, now);
      emit({
        event: next.terminal ? "publish-failed" : "publish-retry",
        level: next.terminal ? "error" : "warn",
        path: row.path,
        cache: cache.url,
        attempts: row.attempts + 1,
        error: failure.error,
        ...(next.terminal ? {} : { nextAttemptAt: new Date(next.nextAttemptAt).toISOString() }),
      });
    }
    return due.length;
  }
}
