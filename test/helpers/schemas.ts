// The official JSON schemas: CycloneDX's (shipped in @cyclonedx/cyclonedx-library,
// used through its own validator) and SPDX 2.3's (shared/reference/schemas).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as CDX from "@cyclonedx/cyclonedx-library";
import { Ajv2019 } from "ajv/dist/2019.js";
import { Ajv2020 } from "ajv/dist/2020.js";
import ajvDraft04 from "ajv-draft-04";
import addFormats from "ajv-formats";
import { ROOT } from "./nix.js";

export async function cycloneDxErrors(
  json: string,
  version: "1.5" | "1.6" | "1.7",
): Promise<unknown> {
  const v = {
    "1.5": CDX.Spec.Version.v1dot5,
    "1.6": CDX.Spec.Version.v1dot6,
    "1.7": CDX.Spec.Version.v1dot7,
  }[version];
  return new CDX.Validation.JsonStrictValidator(v).validate(json);
}

let spdx: (((doc: unknown) => boolean) & { errors?: unknown }) | undefined;

export function spdxErrors(json: string): unknown {
  if (!spdx) {
    const schema = JSON.parse(
      readFileSync(
        join(ROOT, "..", "shared", "reference", "schemas", "spdx-2.3.schema.json"),
        "utf8",
      ),
    ) as object;
    const ajv = new Ajv2019({ strict: false, allErrors: true });
    (addFormats as unknown as (a: Ajv2019) => void)(ajv);
    spdx = ajv.compile(schema);
  }
  return spdx(JSON.parse(json)) ? null : spdx.errors;
}

let openvex: (((doc: unknown) => boolean) & { errors?: unknown }) | undefined;

/** OpenVEX's own JSON schema (openvex/spec, test/fixtures/schemas/README.md). */
export function openVexErrors(doc: unknown): unknown {
  if (!openvex) {
    const schema = JSON.parse(
      readFileSync(join(ROOT, "test", "fixtures", "schemas", "openvex_json_schema.json"), "utf8"),
    ) as object;
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    (addFormats as unknown as (a: Ajv2020) => void)(ajv);
    // RFC 3987 IRIs (OpenVEX's @id): a scheme, then anything but spaces.
    ajv.addFormat("iri", /^[A-Za-z][A-Za-z0-9+.-]*:[^\s]*$/);
    openvex = ajv.compile(schema);
  }
  return openvex(doc) ? null : openvex.errors;
}

let sarif: (((doc: unknown) => boolean) & { errors?: unknown }) | undefined;

/** SARIF 2.1.0's own JSON schema, draft-04 (oasis-tcs/sarif-spec, test/fixtures/schemas/README.md). */
export function sarifErrors(doc: unknown): unknown {
  if (!sarif) {
    const schema = JSON.parse(
      readFileSync(join(ROOT, "test", "fixtures", "schemas", "sarif-schema-2.1.0.json"), "utf8"),
    ) as object;
    // A CommonJS module whose class is its default export.
    const Draft04 = ajvDraft04.default;
    const ajv = new Draft04({ strict: false, allErrors: true });
    (addFormats as unknown as (a: InstanceType<typeof Draft04>) => void)(ajv);
    sarif = ajv.compile(schema);
  }
  return sarif(doc) ? null : sarif.errors;
}
