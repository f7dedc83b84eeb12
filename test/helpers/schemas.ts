// The official JSON schemas: CycloneDX's (shipped in @cyclonedx/cyclonedx-library,
// used through its own validator) and SPDX 2.3's (shared/reference/schemas).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as CDX from "@cyclonedx/cyclonedx-library";
import { Ajv2019 } from "ajv/dist/2019.js";
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
