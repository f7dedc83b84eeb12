import type { RegisteredPath } from "../nix/index.js";

/** How a path was noticed: the Nix database watch, the post-build-hook spool, or a reconciliation scan. */
export type ObservationSource = "nix-db" | "hook" | "reconcile";

/** An output the daemon has seen, and what it owes it. */
export interface ObservedPath {
  readonly path: string;
  readonly deriver?: string;
  /** pending: built here, to be attested; substituted: not built here (reason = its signatures). */
  readonly status: "pending" | "substituted";
  readonly reason?: string;
  readonly source: ObservationSource;
  /** ms since the epoch. */
  readonly registeredAt?: number;
}

/**
 * What a newly registered store path means for the journal. Nix sets `ultimate`
 * only on paths built here; substituted or imported paths carry the binary-cache
 * signatures instead. `.drv` files and sources added with `nix-store --add` are
 * inputs, not build outputs, and are not journaled.
 */
export function classifyRegistered(
  r: RegisteredPath,
  source: ObservationSource,
): ObservedPath | undefined {
  if (r.path.endsWith(".drv")) return undefined;
  const registeredAt = r.registrationTime * 1000;
  const deriver = r.deriver ?? undefined;
  if (r.ultimate && deriver) {
    return { path: r.path, deriver, status: "pending", source, registeredAt };
  }
  if (!r.ultimate && (deriver || r.signatures.length > 0)) {
    return {
      path: r.path,
      ...(deriver ? { deriver } : {}),
      status: "substituted",
      reason:
        r.signatures.length > 0
          ? `substituted, not built here; binary-cache signatures: ${r.signatures.join(" ")}`
          : "substituted or imported, not built here; no binary-cache signature",
      source,
      registeredAt,
    };
  }
  return undefined;
}
