import {
  buildProvenance,
  DerivationCache,
  gatherBuildFacts,
  IN_TOTO_PAYLOAD_TYPE,
  serializeStatement,
  type BuildHost,
  type FlakeSource,
  type SlsaProvenance,
  type Statement,
} from "../attest/index.js";
import type { NixStore } from "../nix/index.js";
import type { BundleSigner } from "../sign/index.js";
import type { AttestationStore, NewAttestation } from "../store/index.js";

export interface AttestContext {
  readonly nix: NixStore;
  readonly host: BuildHost;
  readonly signer: BundleSigner;
  readonly store: AttestationStore;
  readonly builderId: string;
  readonly provenixVersion: string;
  readonly derivations?: DerivationCache;
}

export interface AttestOptions {
  readonly installable?: string;
  readonly attribute?: string;
  readonly flake?: FlakeSource;
  readonly outputs?: readonly string[];
}

export interface AttestResult<P = SlsaProvenance> {
  readonly drvPath: string;
  readonly subjects: readonly { name: string; sha256: string }[];
  readonly attestationId: number;
  /** False when the same statement, signed by the same key, was already stored. */
  readonly inserted: boolean;
  readonly keyid: string;
  readonly bundle: Buffer;
  readonly statement: Statement<P>;
}

/** Gather a derivation's build facts and write its provenance statement (unsigned). */
export async function provenanceFor(
  ctx: Omit<AttestContext, "signer" | "store">,
  drvPath: string,
  options: AttestOptions = {},
): Promise<Statement<SlsaProvenance>> {
  const facts = await gatherBuildFacts(
    ctx.nix,
    ctx.host,
    drvPath,
    {
      builderId: ctx.builderId,
      provenixVersion: ctx.provenixVersion,
      ...options,
    },
    ctx.derivations,
  );
  return buildProvenance(facts);
}

/** A statement signed (DSSE in a Sigstore bundle), ready for the attestation store. */
export interface SignedStatement {
  readonly drvPath: string;
  readonly subjects: readonly { name: string; sha256: string }[];
  readonly keyid: string;
  readonly bundle: Buffer;
  readonly record: NewAttestation;
}

export async function signStatement(
  ctx: Pick<AttestContext, "signer" | "builderId">,
  statement: Statement,
  drvPath: string,
): Promise<SignedStatement> {
  const payload = serializeStatement(statement);
  const { bundle, keyid } = await ctx.signer.signBundle(payload, IN_TOTO_PAYLOAD_TYPE);
  const subjects = statement.subject.map((s) => ({
    name: s.name ?? "",
    sha256: s.digest?.sha256 ?? "",
  }));
  return {
    drvPath,
    subjects,
    keyid,
    bundle,
    record: {
      bundle,
      payload,
      keyid,
      predicateType: statement.predicateType,
      builderId: ctx.builderId,
      derivation: drvPath,
      subjects,
    },
  };
}

export type SignContext = Pick<AttestContext, "signer" | "store" | "builderId">;

/** Sign a statement (DSSE in a Sigstore bundle) and keep it in the attestation store. */
export async function signAndStore(
  ctx: SignContext,
  statement: Statement,
  drvPath: string,
): Promise<Omit<AttestResult, "statement">> {
  const signed = await signStatement(ctx, statement, drvPath);
  const { id, inserted } = ctx.store.put(signed.record);
  return {
    drvPath,
    subjects: signed.subjects,
    attestationId: id,
    inserted,
    keyid: signed.keyid,
    bundle: signed.bundle,
  };
}
