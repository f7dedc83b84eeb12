// in-toto Attestation Framework v1: spec/v1/statement.md, resource_descriptor.md.

export const STATEMENT_TYPE = "https://in-toto.io/Statement/v1";
export const IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json";

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
  _type: typeof STATEMENT_TYPE;
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
