import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Ajv, type ValidateFunction } from "ajv";
import addFormats from "ajv-formats";
import { parse as parseYaml } from "yaml";
import { NIX_DERIVATION_BUILD_TYPE } from "../attest/index.js";
import { PolicyError, type Policy } from "../policy/index.js";
import { parsePublicKey, SignError, type PublicKey } from "../sign/index.js";
import type { TrustMaterial } from "@sigstore/verify";
import { identityRuleProblem, type IdentityRule } from "../verify/index.js";
import { VulnError } from "../vulns/index.js";
import { loadPublicKeys } from "./key-files.js";
import { readVex } from "./vuln-db.js";

// The policy file: YAML or JSON, checked against the JSON Schema that documents it.

const SCHEMA = join(
  dirname(fileURLToPath(import.meta.url)),
  "..",
  "..",
  "..",
  "docs",
  "schemas",
  "policy-v1.schema.json",
);

interface KeySet {
  keys?: string[];
  keyFiles?: string[];
  nixTrustedPublicKeys?: boolean;
}

interface PolicyFile {
  apiVersion: string;
  name?: string;
  expires?: string;
  builders: (KeySet & { id?: string; identities?: IdentityRule[] })[];
  sigstore?: { trustedRoot?: string };
  rebuilders?: KeySet[];
  substituters?: KeySet;
  buildTypes?: string[];
  sources?: { allow?: string[]; deny?: string[] };
  require?: {
    buildLevel?: number;
    sbom?: boolean;
    reproducedBy?: number;
    vulnerabilities?: {
      maxSeverity?: string;
      untriaged?: "fail" | "allow";
      maxDatabaseAgeDays?: number;
      vexMaxAgeDays?: number;
      vex?: string[];
    };
  };
  exceptions?: { path?: string; name?: string; reason: string; expires?: string }[];
}

let validator: ValidateFunction | undefined;

function validate(doc: unknown, file: string): asserts doc is PolicyFile {
  if (!validator) {
    // The schema itself is checked against draft-07 by the tests (test/policy), not
    // on every run: that check costs a third of the compile.
    const ajv = new Ajv({
      allErrors: false,
      strict: true,
      strictRequired: false,
      validateSchema: false,
    });
    (addFormats as unknown as (a: Ajv) => void)(ajv);
    validator = ajv.compile(JSON.parse(readFileSync(SCHEMA, "utf8")) as object);
  }
  const check = validator;
  if (!check(doc)) {
    const e = check.errors?.[0];
    const where = e?.instancePath ? e.instancePath.slice(1).replaceAll("/", ".") : "the policy";
    const extra =
      e?.keyword === "additionalProperties"
        ? ` '${String((e.params as { additionalProperty?: string }).additionalProperty)}'`
        : e?.keyword === "const" || e?.keyword === "enum"
          ? ` (${JSON.stringify((e.params as { allowedValue?: unknown }).allowedValue ?? e.params)})`
          : "";
    throw new PolicyError(
      "INVALID_POLICY",
      `${file}: ${where} ${e?.message ?? "is invalid"}${extra}`,
    );
  }
}

export interface LoadedPolicy {
  readonly policy: Policy;
  /** file:// URI of the policy file. */
  readonly uri: string;
  /** sha256 of the file's bytes, as a VSA's policy.digest. */
  readonly sha256: string;
}

/**
 * Read, validate and resolve a policy file; key files and the trusted root are
 * relative to it. `trustMaterial` gives the Sigstore trust when builders have
 * keyless identities and the file names no trusted root.
 */
export async function loadPolicy(
  file: string,
  nixTrustedKeys: () => Promise<PublicKey[]>,
  trustMaterial?: () => Promise<TrustMaterial>,
): Promise<LoadedPolicy> {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (cause) {
    throw new PolicyError(
      "INVALID_POLICY",
      `cannot read policy ${file}: ${(cause as NodeJS.ErrnoException).code ?? String(cause)}`,
    );
  }
  let doc: unknown;
  try {
    doc = parseYaml(bytes.toString("utf8"), { uniqueKeys: true });
  } catch (e) {
    throw new PolicyError(
      "INVALID_POLICY",
      `${file}: not YAML or JSON: ${(e as Error).message.split("\n")[0] ?? ""}`,
    );
  }
  validate(doc, file);
  const base = dirname(resolve(file));
  const keysOf = async (set: KeySet | undefined, where: string): Promise<PublicKey[]> => {
    const out: PublicKey[] = [];
    try {
      for (const k of set?.keys ?? []) out.push(parsePublicKey(k));
      for (const f of set?.keyFiles ?? [])
        out.push(...(await loadPublicKeys(isAbsolute(f) ? f : join(base, f))));
    } catch (e) {
      if (e instanceof SignError)
        throw new PolicyError("POLICY_KEY", `${file}: ${where}: ${e.message}`);
      throw e;
    }
    if (set?.nixTrustedPublicKeys) out.push(...(await nixTrustedKeys()));
    return out;
  };
  const d = doc;
  for (const [i, b] of (d.builders ?? []).entries()) {
    for (const r of b.identities ?? []) {
      const problem = identityRuleProblem(r);
      if (problem) throw new PolicyError("INVALID_POLICY", `${file}: builders.${i}: ${problem}`);
    }
  }
  const keyless = d.builders.some((b) => (b.identities ?? []).length > 0);
  const rootFile = d.sigstore?.trustedRoot;
  const material =
    rootFile !== undefined
      ? await (
          await import("./trust-root.js")
        ).trustedRootFile(isAbsolute(rootFile) ? rootFile : join(base, rootFile))
      : keyless && trustMaterial
        ? await trustMaterial()
        : undefined;
  if (keyless && !material) {
    throw new PolicyError(
      "INVALID_POLICY",
      `${file}: builders with identities need sigstore.trustedRoot`,
    );
  }
  const policy: Policy = {
    ...(material ? { keyless: material } : {}),
    ...(d.name !== undefined ? { name: d.name } : {}),
    ...(d.expires !== undefined ? { expires: new Date(d.expires) } : {}),
    builders: await Promise.all(
      d.builders.map(async (b, i) => ({
        ...(b.id !== undefined ? { id: b.id } : {}),
        keys: await keysOf(b, `builders[${i}]`),
        identities: b.identities ?? [],
      })),
    ),
    rebuilders: (
      await Promise.all((d.rebuilders ?? []).map((r, i) => keysOf(r, `rebuilders[${i}]`)))
    ).flat(),
    substituterKeys: await keysOf(d.substituters, "substituters"),
    buildTypes: d.buildTypes ?? [NIX_DERIVATION_BUILD_TYPE],
    sources: {
      ...(d.sources?.allow ? { allow: d.sources.allow } : {}),
      deny: d.sources?.deny ?? [],
    },
    require: {
      ...(d.require?.buildLevel !== undefined ? { buildLevel: d.require.buildLevel } : {}),
      sbom: d.require?.sbom ?? false,
      ...(d.require?.reproducedBy !== undefined ? { reproducedBy: d.require.reproducedBy } : {}),
      ...(d.require?.vulnerabilities
        ? {
            vulnerabilities: {
              maxSeverity: d.require.vulnerabilities.maxSeverity ?? "NONE",
              untriagedFails: (d.require.vulnerabilities.untriaged ?? "fail") === "fail",
              ...(d.require.vulnerabilities.maxDatabaseAgeDays !== undefined
                ? { maxDatabaseAgeDays: d.require.vulnerabilities.maxDatabaseAgeDays }
                : {}),
              ...(d.require.vulnerabilities.vexMaxAgeDays !== undefined
                ? { vexMaxAgeDays: d.require.vulnerabilities.vexMaxAgeDays }
                : {}),
              vex: (d.require.vulnerabilities.vex ?? []).flatMap((f) => {
                const path = isAbsolute(f) ? f : join(base, f);
                try {
                  return readVex(path);
                } catch (e) {
                  if (e instanceof VulnError)
                    throw new PolicyError("INVALID_POLICY", `${file}: ${e.message}`);
                  throw e;
                }
              }),
            },
          }
        : {}),
    },
    exceptions: (d.exceptions ?? []).map((e) => ({
      ...(e.path !== undefined ? { path: e.path } : {}),
      ...(e.name !== undefined ? { name: e.name } : {}),
      reason: e.reason,
      ...(e.expires !== undefined ? { expires: new Date(e.expires) } : {}),
    })),
  };
  return {
    policy,
    uri: pathToFileURL(resolve(file)).href,
    sha256: createHash("sha256").update(bytes).digest("hex"),
  };
}
