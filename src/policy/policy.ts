import type { TrustMaterial } from "@sigstore/verify";
import type { PublicKey } from "../sign/index.js";
import type { IdentityRule } from "../verify/index.js";
import type { VexStatement } from "../vulns/index.js";
import type { VulnerabilityRequirement } from "./vulnerabilities.js";
import { CodedError } from "../error.js";

// A verification policy (docs/policy.md), with its keys loaded. The file format is
// defined by docs/schemas/policy-v1.schema.json; system/policy-file.ts reads it.

export const POLICY_API_VERSION = "provenix.dev/policy/v1";

export interface PolicyBuilder {
  /** The builder.id these keys may sign as; undefined: any. */
  readonly id?: string;
  readonly keys: readonly PublicKey[];
  /** Keyless signers (Fulcio certificate identities) that may sign as this builder. */
  readonly identities: readonly IdentityRule[];
}

export interface PolicyException {
  readonly path?: string;
  /** A glob on the store path's name (the part after the hash). */
  readonly name?: string;
  readonly reason: string;
  readonly expires?: Date;
}

export interface Policy {
  readonly name?: string;
  readonly expires?: Date;
  readonly builders: readonly PolicyBuilder[];
  /** What keyless signatures (and timestamps) are checked against, when a builder has identities. */
  readonly keyless?: TrustMaterial;
  readonly rebuilders: readonly PublicKey[];
  readonly substituterKeys: readonly PublicKey[];
  readonly buildTypes: readonly string[];
  readonly sources: { readonly allow?: readonly string[]; readonly deny: readonly string[] };
  readonly require: {
    readonly buildLevel?: number;
    readonly sbom: boolean;
    readonly reproducedBy?: number;
    /** Known vulnerabilities in the closure (provenix vulns), with the VEX statements that triage them. */
    readonly vulnerabilities?: VulnerabilityRequirement & { readonly vex: readonly VexStatement[] };
  };
  readonly exceptions: readonly PolicyException[];
}

export type PolicyErrorCode = "INVALID_POLICY" | "POLICY_KEY";

export class PolicyError extends CodedError<PolicyErrorCode> {}

/** A glob (`*` any run of characters, `?` one) as an anchored regular expression. */
export function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\*?]/g, (c) =>
    c === "*" ? ".*" : c === "?" ? "." : `\\${c}`,
  );
  return new RegExp(`^${body}$`);
}

/** The exception that applies to a path (store path name after `<hash>-`), if any, expired or not. */
export function exceptionFor(policy: Policy, path: string): PolicyException | undefined {
  const name = path.slice(path.lastIndexOf("/") + 1).replace(/^[0-9a-z]{32}-/, "");
  return policy.exceptions.find(
    (e) => e.path === path || (e.name !== undefined && globToRegExp(e.name).test(name)),
  );
}
