import { createHash } from "node:crypto";
import { DerivationCache, IN_TOTO_PAYLOAD_TYPE, serializeStatement } from "../attest/index.js";
import { NixError, type NixStore } from "../nix/index.js";
import {
  PolicyEvaluation,
  VSA_V1,
  vsaStatement,
  type ClosurePath,
  type Policy,
  type PolicyResult,
} from "../policy/index.js";
import type { BundleSigner } from "../sign/index.js";
import type { AttestationStore } from "../store/index.js";
import { preverifySignatures } from "../verify/index.js";
import { hashNars } from "../system/nar-hash-pool.js";
import { buildClosure } from "./closure.js";

export type ClosureScope = "none" | "runtime" | "build";

export interface PolicyVerifyContext {
  readonly nix: NixStore;
  readonly store: AttestationStore;
  /** Recompute each NAR hash from disk instead of trusting Nix's record. */
  readonly rehash: boolean;
}

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/**
 * The paths to check for these roots: the roots alone, their runtime closure
 * (store references), or their build closure (every output and source of every
 * derivation needed to build them; .drv files are covered by the provenance
 * that names them).
 */
export async function closurePaths(
  nix: NixStore,
  roots: readonly string[],
  scope: ClosureScope,
): Promise<string[]> {
  if (scope === "none") return [...roots];
  if (scope === "runtime") return nix.closure(roots);
  const infos = await nix.pathInfos(roots);
  const paths = new Set(roots);
  const derivations = new DerivationCache(nix);
  for (const root of roots) {
    const deriver = infos.get(root)?.deriver;
    if (!deriver) {
      throw new NixError(
        "NOT_BUILT",
        `${root} has no deriver recorded, so it has no build closure`,
      );
    }
    for (const drv of await buildClosure(derivations, deriver)) {
      const d = await derivations.get(drv);
      for (const src of d.inputSrcs) paths.add(src);
      for (const out of (await nix.derivationOutputs(drv)).values()) paths.add(out);
    }
  }
  return [...paths].sort();
}

function rehashed(digests: ReadonlyMap<string, { sha256: string }>, path: string): string {
  const d = digests.get(path);
  if (!d) throw new Error(`internal: ${path} was not rehashed`);
  return d.sha256;
}

/** Paths whose bundles are read and checked at a time: memory stays flat however large the closure. */
const CHUNK = 2000;

/**
 * Gather what the policy needs to know of each path, then evaluate it, a chunk
 * at a time: the signatures of the next chunk are checked on all cores (libuv's
 * pool) while the pure evaluation of this one runs.
 */
export async function verifyWithPolicy(
  ctx: PolicyVerifyContext,
  policy: Policy,
  roots: readonly string[],
  scope: ClosureScope,
  now = new Date(),
): Promise<PolicyResult> {
  const paths = await closurePaths(ctx.nix, roots, scope);
  const infos = await ctx.nix.pathInfos(paths);
  const rootSet = new Set(roots);
  // Rehashed on all cores, the largest paths first.
  const digests = ctx.rehash
    ? await hashNars([...infos.values()].map((i) => ({ path: i.path, narSize: i.narSize })))
    : undefined;
  const keys = [...policy.builders.flatMap((b) => b.keys)];
  const prepare = (start: number) => {
    const part = paths.slice(start, start + CHUNK);
    const stored = ctx.store.bundlesNaming(part);
    const closure: ClosurePath[] = part.map((path) => {
      const info = infos.get(path);
      return {
        path,
        root: rootSet.has(path),
        ...(info ? { info, sha256: digests ? rehashed(digests, path) : info.narHash } : {}),
        attestations: stored.get(path) ?? [],
      };
    });
    const bundles = closure.flatMap((c) => c.attestations.map((a) => a.bundle));
    return preverifySignatures(bundles, keys).then((signatures) => ({ closure, signatures }));
  };
  const evaluation = new PolicyEvaluation(policy, { now, digest: sha256 });
  let ahead = prepare(0);
  for (let start = 0; start < paths.length; start += CHUNK) {
    const { closure, signatures } = await ahead;
    if (start + CHUNK < paths.length) ahead = prepare(start + CHUNK);
    evaluation.add(closure, signatures);
  }
  return evaluation.result();
}

export interface VsaOptions {
  readonly signer: BundleSigner;
  readonly verifierId: string;
  readonly verifierVersion: Record<string, string>;
  readonly resourceUri: string;
  readonly policy: { uri: string; sha256: string };
  readonly now?: Date;
}

/** Sign a VSA for this result about the roots (their NAR hashes), and keep it in the attestation store. */
export async function emitVsa(
  store: AttestationStore,
  subjects: readonly { name: string; sha256: string }[],
  result: PolicyResult,
  o: VsaOptions,
): Promise<{ bundle: Buffer; id: number }> {
  const statement = vsaStatement({
    subjects,
    verifierId: o.verifierId,
    verifierVersion: o.verifierVersion,
    time: o.now ?? new Date(),
    resourceUri: o.resourceUri,
    policy: o.policy,
    result,
  });
  const payload = serializeStatement(statement);
  const { bundle, keyid } = await o.signer.signBundle(payload, IN_TOTO_PAYLOAD_TYPE);
  const { id } = store.put({
    bundle,
    payload,
    keyid,
    predicateType: VSA_V1,
    builderId: o.verifierId,
    subjects: [...subjects],
  });
  return { bundle, id };
}

/** The resourceUri provenix writes for a store path by default. */
export function defaultResourceUri(path: string): string {
  return `file://${path}`;
}
