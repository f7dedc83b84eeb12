import { readFileSync } from "node:fs";
import { SLSA_PROVENANCE_V1 } from "../attest/index.js";
import {
  verifyBundle,
  verifyStorePath,
  type BundleVerification,
  type PathVerification,
  type SubjectCheck,
} from "../app/verify.js";
import { sha256File } from "../system/file-tree.js";
import { classifyTarget } from "../system/targets.js";
import { needTargets, printJson, strings, trustedKeysFrom } from "./args.js";
import { CACHE_VERIFY_HELP, verifyFrom } from "./cache-command.js";
import { verifyPolicy, verifyVsaFile } from "./policy-command.js";
import { keylessTrust, SIGNING_OPTIONS, TRUST_HELP, TRUST_OPTIONS } from "./sigstore-options.js";
import { REGISTRY_HELP, REGISTRY_OPTIONS, verifyImage } from "./oci-command.js";
import type { Command } from "./command.js";
import { CliError, EXIT } from "./errors.js";
import type { Io } from "./main.js";

function renderPath(v: PathVerification, io: Io): void {
  io.out(`${v.ok ? "PASS" : "FAIL"} ${v.path}\n`);
  if (v.sha256) {
    io.out(
      `  nar          sha256:${v.sha256} (${v.rehashed ? "recomputed from disk, equals Nix's record" : "Nix's record, not recomputed"})\n`,
    );
  }
  const best = v.attestations[0];
  if (best) {
    io.out(
      `  attestation  #${best.id}${v.attestations.length > 1 ? ` (best of ${v.attestations.length})` : ""}\n`,
    );
    for (const c of best.checks)
      io.out(`  ${c.ok ? "ok  " : "FAIL"} ${c.name.padEnd(13)} ${c.detail}\n`);
  }
  if (v.reproducedBy) {
    io.out(
      `  reproduced   by ${v.reproducedBy.length} trusted key(s)${v.reproducedBy.length > 0 ? `: ${v.reproducedBy.join(", ")}` : ""}\n`,
    );
  }
  if (!v.ok) io.out(`  reason: ${v.reason ?? "unknown"}\n`);
}

const SUBJECT_STATE: Record<SubjectCheck["status"], (s: SubjectCheck) => string> = {
  verified: (s) =>
    `matches ${s.actualFrom === "disk" ? "the NAR on disk" : "Nix's recorded NAR hash"}${s.path === s.name ? "" : ` of ${s.path ?? "?"}`}`,
  "digest-mismatch": (s) => `MISMATCH: actual sha256:${s.actual ?? "?"} (${s.path ?? "?"})`,
  "artifact-verified": (s) => `matches the sha256 of ${s.artifact ?? "?"}`,
  "not-in-local-store": (s) => `${s.path ?? s.name} is not in the local store, not checked`,
  "not-a-store-path": () => "not a store path, not checked",
};

function renderBundle(v: BundleVerification, io: Io): void {
  io.out(`${v.ok ? "PASS" : "FAIL"} ${v.file}\n`);
  for (const c of v.attestation.checks)
    io.out(`  ${c.ok ? "ok  " : "FAIL"} ${c.name.padEnd(13)} ${c.detail}\n`);
  for (const s of v.subjects) {
    io.out(`  subject ${s.name} sha256:${s.attested ?? "none"}: ${SUBJECT_STATE[s.status](s)}\n`);
  }
  if (!v.ok) io.out(`  reason: ${v.reason ?? "unknown"}\n`);
}

export const verifyCommand: Command = {
  usage: "Usage: provenix verify [options] <./result | store path | bundle.json>...",
  help: `For a store path: recomputes the NAR sha256 of the path on disk (and checks it
against Nix's record), finds the provenance kept for it in the attestation
store, and checks, in order: the bundle, payloadType, the signature over the
exact signed bytes (against trusted keys), the statement, predicateType
(${SLSA_PROVENANCE_V1}), the subject (name and digest), and the builder id.
For a bundle file (provenix's, cosign's, any Sigstore bundle with a DSSE in-toto
statement): checks its signature and statement, then every subject that names a
store path present in the local store (by its full path, or by its base name as
'cosign attest-blob --hash <NAR sha256> /nix/store/...' writes it), and every
subject whose digest is that of an --artifact file. A subject that is not a store
path is reported as such: the signature may be good, but nothing was checked.

Trusted keys come from --key, --trusted-key, the config file's trustedKeys (by
default the public key 'provenix keygen' wrote), and Nix's trusted-public-keys.

Options:
  --key FILE          a trusted public key file: Nix keys (name:base64, one per
                      line) or one PEM key (repeatable)
  --trusted-key KEY   a trusted Nix public key, name:base64 (repeatable)
  --no-nix-keys       do not trust Nix's trusted-public-keys
  --builder-id URI    require this runDetails.builder.id (repeatable; its
                      slsa-build-level parameter is ignored in the comparison)
  --require-level N   require builder.id to claim SLSA Build level N or higher
                      (provenix writes the claim only where 'provenix assess'
                      passes; trust it as far as you trust the signer)
  --require-reproduced-by K
                      require K distinct trusted keys whose own builds gave the
                      same NAR hash: provenance, or a rebuild attestation
                      ('provenix rebuild'; others' imported with 'provenix import')
  --no-rehash         trust Nix's recorded NAR hash instead of rehashing
  --artifact FILE     (bundle files) a file whose sha256 a subject must carry,
                      e.g. an output's NAR from 'nix-store --dump' (repeatable)
  --type URI          (bundle files) require this predicateType
  --json              print the full results as JSON

With a policy (docs/policy.md; JSON Schema in docs/schemas/policy-v1.schema.json):
  --policy FILE       check the artifact (and with --closure, every path of its
                      closure) against a YAML or JSON policy: trusted provenance,
                      or a trusted binary-cache signature for substituted paths,
                      or a source named by trusted provenance, or an exception.
                      Lists every failing path with its reason.
  --closure [KIND]    runtime (default for a bare --closure) or build
  --verbose           list the paths that pass too, with what vouched for them
  --emit-vsa FILE     sign a SLSA Verification Summary Attestation of the result
                      (also kept in the store); signed with --signing-key or the
                      default signing key
  --signing-key FILE  the key that signs the VSA
  --verifier-id URI   the VSA's verifier.id (default
                      https://provenix.dev/verifiers/provenix/v1#<hostname>)
  --resource-uri URI  the VSA's resourceUri (default file://<store path>)
  --policy-uri URI    the VSA's policy.uri (default the policy file's file:// URI)
  --db FILE           the vulnerability database for require.vulnerabilities
                      (default $XDG_DATA_HOME/provenix/vulns.db; 'provenix vulns')
  --meta FILE         package metadata for require.vulnerabilities (CPEs, purls,
                      knownVulnerabilities), as 'nix-env -qa --meta --json' writes it
  --keyless, --timestamp-url, ...  sign the VSA the Sigstore way (see attest --help)

Checking a VSA (the spec's procedure: signature, subject, predicateType,
verifier, resourceUri, PASSED, level):
  --vsa FILE          the VSA to check against the target
  --verifier-id URI   require this verifier.id
  --resource-uri URI  require this resourceUri (default file://<store path>)
  --vsa-level N       require SLSA_BUILD_LEVEL_N or higher in verifiedLevels

${TRUST_HELP}

${CACHE_VERIFY_HELP}

Images in a registry (oci://<registry>/<repository>:<tag> or @sha256:...): the
provenance attached as an OCI referrer (referrers API, else the sha256-<hex>
tag) must verify and name the image's manifest digest.
${REGISTRY_HELP}`,
  optionalValues: { closure: { default: "runtime", choices: ["runtime", "build"] } },
  options: {
    policy: { type: "string" },
    closure: { type: "string" },
    verbose: { type: "boolean" },
    "emit-vsa": { type: "string" },
    "signing-key": { type: "string" },
    "verifier-id": { type: "string" },
    "resource-uri": { type: "string" },
    "policy-uri": { type: "string" },
    db: { type: "string" },
    meta: { type: "string" },
    vsa: { type: "string" },
    "vsa-level": { type: "string" },
    ...REGISTRY_OPTIONS,
    key: { type: "string", multiple: true },
    "trusted-key": { type: "string", multiple: true },
    "no-nix-keys": { type: "boolean" },
    "builder-id": { type: "string", multiple: true },
    "require-level": { type: "string" },
    "require-reproduced-by": { type: "string" },
    "no-rehash": { type: "boolean" },
    artifact: { type: "string", multiple: true },
    type: { type: "string" },
    ...TRUST_OPTIONS,
    ...SIGNING_OPTIONS,
    from: { type: "string" },
    "from-substituters": { type: "boolean" },
    "cache-key": { type: "string", multiple: true },
    "cache-timeout": { type: "string" },
  },
  async run(ctx, inv) {
    const targets = needTargets(inv, "target to verify");
    if (typeof inv.values.policy === "string" && typeof inv.values.vsa === "string") {
      throw new CliError("USAGE", "--policy verifies and --vsa checks a VSA: use one at a time");
    }
    if (typeof inv.values.from === "string" || inv.values["from-substituters"] === true) {
      return verifyFrom(ctx, inv, targets);
    }
    if (typeof inv.values.policy === "string") return verifyPolicy(ctx, inv, targets);
    if (typeof inv.values.vsa === "string") return verifyVsaFile(ctx, inv, targets);
    for (const flag of ["closure", "emit-vsa", "verbose"]) {
      if (inv.values[flag] !== undefined) throw new CliError("USAGE", `--${flag} needs --policy`);
    }
    const trustedKeys = await trustedKeysFrom(ctx, inv);
    const builderIds = strings(inv.values["builder-id"]);
    const level =
      typeof inv.values["require-level"] === "string" ? inv.values["require-level"] : undefined;
    if (level !== undefined && !["0", "1", "2", "3"].includes(level))
      throw new CliError("USAGE", `--require-level takes 0, 1, 2 or 3`);
    const k = inv.values["require-reproduced-by"];
    if (typeof k === "string" && !/^[1-9][0-9]*$/.test(k))
      throw new CliError("USAGE", "--require-reproduced-by takes a number of builders, 1 or more");
    const keyless = await keylessTrust(inv);
    const base = {
      nix: ctx.nix,
      trustedKeys,
      ...(keyless ? { keyless } : {}),
      rehash: inv.values["no-rehash"] !== true,
      ...(builderIds.length > 0 ? { builderIds } : {}),
      ...(level !== undefined ? { minBuildLevel: Number(level) } : {}),
      ...(typeof k === "string" ? { reproducedBy: Number(k) } : {}),
    };
    const artifacts = await Promise.all(
      strings(inv.values.artifact).map(async (file) => ({
        file,
        sha256: await sha256File(file).catch((cause: unknown) => {
          const code = (cause as NodeJS.ErrnoException).code ?? String(cause);
          throw new CliError("INPUT", `cannot read artifact ${file}: ${code}`, { cause });
        }),
      })),
    );
    const type = typeof inv.values.type === "string" ? inv.values.type : undefined;
    const results: (PathVerification | BundleVerification)[] = [];
    const images: unknown[] = [];
    let imagesOk = true;
    for (const arg of targets) {
      if (arg.startsWith("oci://")) {
        const r = await verifyImage(ctx, inv, arg);
        images.push(r.result);
        imagesOk &&= r.ok;
        continue;
      }
      const t = classifyTarget(arg, ctx.nix.storeDir);
      let r: PathVerification | BundleVerification;
      switch (t.kind) {
        case "output":
        case "derivation":
          r = await verifyStorePath(
            { ...base, store: ctx.store },
            t.kind === "output" ? t.path : t.drvPath,
          );
          if (!inv.json) renderPath(r, inv.io);
          break;
        case "bundle": {
          if (typeof k === "string") {
            throw new CliError(
              "USAGE",
              `--require-reproduced-by checks store paths; import ${arg} with 'provenix import' and verify the path`,
            );
          }
          const bytes = readFileSync(t.file);
          r = await verifyBundle(base, t.file, bytes, type, artifacts);
          if (!inv.json) renderBundle(r, inv.io);
          break;
        }
        case "installable":
          throw new CliError(
            "INPUT",
            `verify takes a build output or a bundle file, not the installable '${arg}'`,
          );
      }
      results.push(r);
    }
    if (inv.json) {
      printJson(inv, [
        ...images,
        ...results.map((r) => ({
          ...r,
          ...("attestations" in r
            ? {
                attestations: r.attestations.map((a) => ({
                  id: a.id,
                  ok: a.ok,
                  reason: a.reason,
                  checks: a.checks,
                  signer: a.signer?.keyid,
                })),
              }
            : {
                attestation: {
                  ok: r.attestation.ok,
                  reason: r.attestation.reason,
                  checks: r.attestation.checks,
                  signer: r.attestation.signer?.keyid,
                },
              }),
        })),
      ]);
    }
    return imagesOk && results.every((r) => r.ok) ? EXIT.OK : EXIT.VERIFY_FAILED;
  },
};
