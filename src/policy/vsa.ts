import { STATEMENT_TYPE, type Statement } from "../attest/index.js";
import type { PublicKey } from "../sign/index.js";
import { verifyAttestation, type Check } from "../verify/index.js";
import type { PolicyResult } from "./evaluate.js";

// SLSA Verification Summary Attestation v1 (slsa-framework/slsa releases/v1.0
// spec/verification_summary.md; verifier.version and the procedure from v1.1).

export const VSA_V1 = "https://slsa.dev/verification_summary/v1";

export interface VsaPredicate {
  verifier: { id: string; version?: Record<string, string> };
  timeVerified: string;
  resourceUri: string;
  policy: { uri: string; digest?: Record<string, string> };
  inputAttestations?: { uri?: string; digest: Record<string, string> }[];
  verificationResult: "PASSED" | "FAILED";
  verifiedLevels: string[];
  dependencyLevels?: Record<string, number>;
  slsaVersion?: string;
}

export interface VsaInput {
  readonly subjects: readonly { name: string; sha256: string }[];
  readonly verifierId: string;
  readonly verifierVersion: Record<string, string>;
  readonly time: Date;
  readonly resourceUri: string;
  readonly policy: { uri: string; sha256: string };
  readonly result: PolicyResult;
}

const level = (n: number) => `SLSA_BUILD_LEVEL_${n}`;

/**
 * The VSA of a policy evaluation: the artifact's level is the lowest its roots
 * reached; dependencyLevels counts the other paths of the closure by the level
 * their evidence supports (0 for substituted, source and excepted paths).
 */
export function vsaStatement(v: VsaInput): Statement<VsaPredicate> {
  const roots = v.result.paths.filter((p) => p.root);
  const rootLevel = Math.min(...roots.map((p) => p.level ?? 0));
  const passed = v.result.ok && roots.length > 0;
  const dependencyLevels: Record<string, number> = {};
  for (const p of v.result.paths) {
    if (p.root) continue;
    const key = p.ok ? level(p.level ?? 0) : "FAILED";
    dependencyLevels[key] = (dependencyLevels[key] ?? 0) + 1;
  }
  const inputs = new Map<string, number>();
  for (const p of v.result.paths) for (const u of p.used) inputs.set(u.sha256, u.id);
  return {
    _type: STATEMENT_TYPE,
    subject: v.subjects.map((s) => ({ name: s.name, digest: { sha256: s.sha256 } })),
    predicateType: VSA_V1,
    predicate: {
      verifier: { id: v.verifierId, version: v.verifierVersion },
      timeVerified: v.time.toISOString(),
      resourceUri: v.resourceUri,
      policy: { uri: v.policy.uri, digest: { sha256: v.policy.sha256 } },
      // Optional, but when present it must list every attestation used (none: left out).
      ...(inputs.size > 0
        ? { inputAttestations: [...inputs.keys()].sort().map((sha256) => ({ digest: { sha256 } })) }
        : {}),
      verificationResult: passed ? "PASSED" : "FAILED",
      verifiedLevels: passed ? [level(rootLevel)] : ["FAILED"],
      dependencyLevels: Object.fromEntries(Object.entries(dependencyLevels).sort()),
      slsaVersion: "1.0",
    },
  };
}

export interface VsaExpectations {
  readonly trustedKeys: readonly PublicKey[];
  readonly subject: { readonly name: string; readonly sha256: string };
  readonly verifierId?: string;
  readonly resourceUri?: string;
  /** Accept verifiedLevels holding SLSA_BUILD_LEVEL_n with n at least this. */
  readonly minLevel?: number;
}

export interface VsaVerification {
  readonly ok: boolean;
  readonly checks: readonly Check[];
  readonly reason?: string;
  readonly predicate?: VsaPredicate;
}

/** Check a VSA by the spec's procedure (v1.1 "How to verify", steps 1 to 7). */
export function verifyVsa(bytes: Uint8Array, e: VsaExpectations): VsaVerification {
  // Steps 1-3: signature (over the exact bytes, before parsing), subject digest, predicateType.
  const v = verifyAttestation(bytes, {
    trustedKeys: e.trustedKeys,
    predicateType: VSA_V1,
    subject: e.subject,
  });
  const checks: Check[] = [...v.checks];
  if (!v.ok || !v.statement) return { ok: false, checks, reason: v.reason ?? "not verified" };
  const p = v.statement.predicate as Partial<VsaPredicate> | undefined;
  const fail = (name: Check["name"], detail: string): VsaVerification => {
    checks.push({ name, ok: false, detail });
    return { ok: false, checks, reason: detail };
  };
  if (!p || typeof p.verifier?.id !== "string" || typeof p.resourceUri !== "string") {
    return fail("statement", "VSA predicate lacks verifier.id or resourceUri");
  }
  // Step 4: the verifier is the one this key speaks for.
  if (e.verifierId !== undefined && p.verifier.id !== e.verifierId) {
    return fail("builder", `verifier.id is '${p.verifier.id}', expected '${e.verifierId}'`);
  }
  checks.push({ name: "builder", ok: true, detail: `verifier ${p.verifier.id}` });
  // Step 5: about the resource we are looking at.
  if (e.resourceUri !== undefined && p.resourceUri !== e.resourceUri) {
    return fail("subject", `resourceUri is '${p.resourceUri}', expected '${e.resourceUri}'`);
  }
  checks.push({ name: "subject", ok: true, detail: `resourceUri ${p.resourceUri}` });
  // Step 6: it passed.
  if (p.verificationResult !== "PASSED") {
    return fail("statement", `verificationResult is '${String(p.verificationResult)}'`);
  }
  // Step 7: at the level expected.
  const levels = Array.isArray(p.verifiedLevels) ? p.verifiedLevels : [];
  if (e.minLevel !== undefined) {
    const reached = levels
      .map((l) => /^SLSA_BUILD_LEVEL_(\d)$/.exec(String(l))?.[1])
      .filter((x): x is string => x !== undefined)
      .map(Number);
    if (!reached.some((n) => n >= e.minLevel!)) {
      return fail(
        "statement",
        `verifiedLevels ${JSON.stringify(levels)} do not reach SLSA_BUILD_LEVEL_${e.minLevel}`,
      );
    }
  }
  checks.push({
    name: "statement",
    ok: true,
    detail: `PASSED at ${levels.join(", ") || "no level"}`,
  });
  return { ok: true, checks, predicate: p as VsaPredicate };
}
