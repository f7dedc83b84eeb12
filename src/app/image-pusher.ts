import { existsSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import type { BuildHost } from "../attest/index.js";
import { nextAttempt, type RetryPolicy } from "../chains/index.js";
import { formatReference, OciError, parseReference, type ImageReference } from "../oci/index.js";
import type { NixStore } from "../nix/index.js";
import type { BundleSigner } from "../sign/index.js";
import type { AttestationStore } from "../store/index.js";
import { openImage } from "../system/image-source.js";
import type { RegistryClient } from "../system/registry.js";
import type { ChainsEvent } from "./chains.js";
import { pushAndAttest } from "./push.js";

/**
 * Chains mode for images: attested image outputs are queued (in the same
 * transaction as their attestation), pushed to `<prefix>/<name>:<store hash>`
 * with provenance attached, and retried with backoff until they land. Nothing
 * is dropped: every queued image ends pushed, failed (with the last error) or
 * skipped (not an image after all).
 */
export class ImagePusher {
  constructor(
    private readonly deps: {
      readonly nix: NixStore;
      readonly host: BuildHost;
      readonly store: AttestationStore;
      readonly signer: BundleSigner;
      readonly client: RegistryClient;
      readonly emit: (e: ChainsEvent) => void;
      readonly release?: (path: string) => void;
      readonly now?: () => number;
    },
    private readonly o: {
      /** registry/repository prefix, e.g. registry.example.com/nix */
      readonly prefix: ImageReference;
      readonly builderId: string;
      readonly provenixVersion: string;
      readonly retry: RetryPolicy;
    },
  ) {}

  private now(): number {
    return this.deps.now?.() ?? Date.now();
  }

  /** Where an output goes: the prefix, its name (without .tar/.tar.gz), its store hash as tag. */
  destination(path: string): string {
    const base = basename(path);
    const hash = base.slice(0, 32);
    const name = base
      .slice(33)
      .replace(/\.(tar\.gz|tgz|tar)$/, "")
      .toLowerCase()
      .replace(/[^a-z0-9._-]+/g, "-")
      .replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, "");
    return formatReference({
      registry: this.o.prefix.registry,
      repository: `${this.o.prefix.repository}/${name || "image"}`,
      tag: hash,
    });
  }

  /** Queue the image outputs among these attested paths (call inside the attestation's transaction). */
  enqueue(paths: readonly string[]): string[] {
    const queued: string[] = [];
    for (const p of paths) {
      if (!looksLikeImage(p)) continue;
      this.deps.store.pushes.enqueue(p, this.destination(p), this.now());
      queued.push(p);
    }
    return queued;
  }

  owes(path: string): boolean {
    return this.deps.store.pushes.owes(path);
  }

  /** Push what is due, one image at a time. */
  async work(limit = 4): Promise<number> {
    const due = this.deps.store.pushes.due("image", this.now(), limit);
    for (const row of due) {
      const ref = parseReference(row.destination);
      try {
        if (!existsSync(row.path)) {
          throw new OciError(
            "NOT_AN_IMAGE",
            `${row.path} was garbage-collected before it was pushed`,
          );
        }
        const image = await openImage(row.path);
        try {
          const r = await pushAndAttest(
            {
              nix: this.deps.nix,
              host: this.deps.host,
              store: this.deps.store,
              builderId: this.o.builderId,
              provenixVersion: this.o.provenixVersion,
            },
            this.deps.client,
            ref,
            row.path,
            image,
            { signer: this.deps.signer },
          );
          this.deps.store.pushes.pushed(
            row.path,
            row.destination,
            r.pushed.manifest.digest,
            r.attached?.referrer ?? null,
            this.now(),
          );
          this.deps.emit({
            event: "pushed",
            level: "info",
            path: row.path,
            image: `${formatReference({ ...ref, tag: undefined })}@${r.pushed.manifest.digest}`,
            referrer: r.attached?.referrer,
          });
        } finally {
          image.close();
        }
        this.deps.release?.(row.path);
      } catch (e) {
        if (!(e instanceof OciError)) throw e;
        const skipped = e.code === "NOT_AN_IMAGE" || e.code === "MALFORMED_ARCHIVE";
        const permanent = skipped || e.code === "BAD_REFERENCE";
        const next = nextAttempt(row.attempts + 1, this.now(), this.o.retry, permanent);
        this.deps.store.pushes.failure(
          row.path,
          row.destination,
          e.message,
          next,
          skipped,
          this.now(),
        );
        this.deps.emit({
          event: skipped ? "push-skipped" : next.terminal ? "push-failed" : "push-retry",
          level: skipped ? "warn" : next.terminal ? "error" : "warn",
          path: row.path,
          destination: row.destination,
          attempts: row.attempts + 1,
          error: e.message,
          ...(next.terminal || skipped
            ? {}
            : { nextAttemptAt: new Date(next.nextAttemptAt).toISOString() }),
        });
        if (next.terminal || skipped) this.deps.release?.(row.path);
      }
    }
    return due.length;
  }
}

/** A cheap test before queueing: an OCI layout directory, or a file named like an image archive. */
function looksLikeImage(path: string): boolean {
  try {
    const st = statSync(path);
    if (st.isDirectory()) return existsSync(join(path, "oci-layout"));
    return st.isFile() && /\.(tar|tar\.gz|tgz)$/.test(path);
  } catch {
    return false;
  }
}
