// provenix gc: remove the attestations of store paths that are gone, once they are
// older than a retention period. Never the evidence of a path still present: an
// attestation goes only when every one of its subjects is a store path that is no
// longer valid here.
import { isStorePath, type NixStore } from "../nix/index.js";
import type { AttestationStore } from "../store/index.js";

export interface GcOptions {
  /** Attestations made before this are candidates. */
  readonly before: Date;
  /** Report what would go, remove nothing. */
  readonly dryRun: boolean;
  /** Rows read (and paths checked) at a time. */
  readonly batch?: number;
  /** Called after each batch, for progress. */
  readonly progress?: (seen: number, removed: number) => void;
}

export interface GcRemoved {
  readonly id: number;
  readonly predicateType: string;
  readonly createdAt: string;
  readonly subjects: readonly string[];
}

export interface GcReport {
  readonly before: string;
  readonly dryRun: boolean;
  /** Attestations older than the retention period. */
  readonly candidates: number;
  readonly removed: readonly GcRemoved[];
  /** Bytes of the removed bundles. */
  readonly bytes: number;
  /** Why old attestations were kept: a subject is still present, or is not a store path. */
  readonly kept: { readonly present: number; readonly notStorePath: number };
}

/** Why an old attestation stays, or undefined when it can go. */
export function keepReason(
  subjects: readonly string[],
  valid: ReadonlySet<string>,
  storeDir: string,
): "present" | "notStorePath" | undefined {
  if (subjects.length === 0 || subjects.some((s) => !isStorePath(s, storeDir)))
    return "notStorePath";
  return subjects.some((s) => valid.has(s)) ? "present" : undefined;
}

export async function collectGarbage(
  store: AttestationStore,
  nix: NixStore,
  o: GcOptions,
): Promise<GcReport> {
  const batch = o.batch ?? 5000;
  const removed: GcRemoved[] = [];
  const kept = { present: 0, notStorePath: 0 };
  let candidates = 0;
  let bytes = 0;
  let after = 0;
  for (;;) {
    const page = store.createdBefore(o.before, after, batch);
    if (page.length === 0) break;
    after = (page[page.length - 1] as { id: number }).id;
    candidates += page.length;
    const paths = [
      ...new Set(page.flatMap((a) => a.subjects.filter((s) => isStorePath(s, nix.storeDir)))),
    ];
    const valid = new Set((await nix.pathInfos(paths)).keys());
    const gone = page.filter((a) => {
      const why = keepReason(a.subjects, valid, nix.storeDir);
      if (why) kept[why]++;
      return why === undefined;
    });
    if (!o.dryRun) store.remove(gone.map((a) => a.id));
    for (const a of gone) {
      bytes += a.bytes;
      removed.push({
        id: a.id,
        predicateType: a.predicateType,
        createdAt: a.createdAt.toISOString(),
        subjects: a.subjects,
      });
    }
    o.progress?.(candidates, removed.length);
  }
  return { before: o.before.toISOString(), dryRun: o.dryRun, candidates, removed, bytes, kept };
}
