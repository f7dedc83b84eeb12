// in-toto Attestation Framework v1: spec/v1/statement.md, resource_descriptor.md.

export const STATEMENT_TYPE = "https://in-toto.io/Statement/v1";
/**
 * The earlier statement version (in-toto ITE-6): the same subject, predicateType and
 * predicate fields. cosign 2 still writes it; we read it, and write only v1.
 */
export const STATEMENT_TYPE_V01 = "https://in-toto.io/Statement/v0.1";
export const IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json";

/**
 * The DSSE payloadTypes of an in-toto statement (Attestation Framework v1.2,
 * spec/v1/envelope.md): the common one, or `application/vnd.in-toto.<predicate>+json`
 * with <predicate> a predicate specification's file name. Only the statement's
 * predicateType says what the predicate is; the media type is no evidence of it.
 */
export function isInTotoPayloadType(payloadType: string): boolean {
  return (
    payloadType === IN_TOTO_PAYLOAD_TYPE ||
    /^application\/vnd\.in-toto\.[a-z0-9][a-z0-9._-]*\+json$/.test(payloadType)
  );
}

/** DigestSet: algorithm -> lower-case hex. */
export type DigestSet = Record<string, string>;

export interface ResourceDescriptor {
  name?: string;
  uri?: string;
  digest?: DigestSet;
  content?: string;
  downloadLocation?: string;
  mediaType?: string;
  annotations?: Record<string, unknown>;
}

export interface Statement<P = unknown> {
  _type: typeof STATEMENT_TYPE | typeof STATEMENT_TYPE_V01;
  subject: ResourceDescriptor[];
  predicateType: string;
  predicate?: P;
}

/**
 * The canonical bytes of a statement we produce: JSON with keys in the order the
 * builder wrote them. Same input, same bytes; what is signed is exactly this.
 */
export function serializeStatement(statement: Statement): Buffer {
  return Buffer.from(JSON.stringify(statement), "utf8");
}
