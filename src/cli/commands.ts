import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { ParseArgsConfig } from "node:util";
import { SLSA_PROVENANCE_V1, type Statement } from "../attest/index.js";
import {
  provenanceFor,
  signStatement,
  type AttestResult,
  type SignedStatement,
} from "../app/attest.js";
import {
  verifyBundle,
  verifyStorePath,
  type BundleVerification,
  type PathVerification,
  type SubjectCheck,
} from "../app/verify.js";
import { generateKeyPair, nixPublicKeyText, parseBundle, parseSecretKey } from "../sign/index.js";
import { writeKeyPair } from "../system/key-files.js";
import { sha256File } from "../system/file-tree.js";
import { classifyTarget } from "../system/targets.js";
import { derivationsFor, needTargets, printJson, strings, trustedKeysFrom } from "./args.js";
import type { StoredAttestation } from "../store/index.js";
import { VERSION } from "../version.js";
import { configDir } from "./config.js";
import { sbomChoices, sbomCommand, sbomFor } from "./sbom-command.js";
import { vulnsCommand } from "./vulns-command.js";
import { attestSbom } from "../app/sbom.js";
import { assessCommand, claimLevel } from "./assess-command.js";
import { daemonCommand, hookCommand, statusCommand } from "./daemon-command.js";
import { gcCommand } from "./gc-command.js";
import { keyCommand } from "./key-command.js";
import { CACHE_VERIFY_HELP, publishCommand, verifyFrom } from "./cache-command.js";
import { verifyPolicy, verifyVsaFile } from "./policy-command.js";
import {
  keylessTrust,
  SIGNING_HELP,
  SIGNING_OPTIONS,
  TRUST_HELP,
  TRUST_OPTIONS,
} from "./sigstore-options.js";
import { pushCommand, REGISTRY_HELP, REGISTRY_OPTIONS, verifyImage } from "./oci-command.js";
import {
  consensusCommand,
  importCommand,
  rebuildCommand,
  reportCommand,
} from "./rebuild-command.js";
import type { Context } from "./context.js";
import { CliError, EXIT } from "./errors.js";
import type { Io } from "./main.js";

export interface Invocation {
  values: Record<string, unknown>;
  positionals: string[];
  json: boolean;
  io: Io;
}

export interface Command {
  summary: string;
  usage: string;
  help: string;
  options: ParseArgsConfig["options"];
  /** `--key` names the signing key (attest) rather than a trusted public key (verify). */
  keyIsSigningKey?: boolean;
  /** `--builder-id` sets the builder we attest as (attest) rather than expectations (verify). */
  builderIdIsOwn?: boolean;
  /** Options whose value may be left out: `--closure` alone means `--closure build`. */
  optionalValues?: Record<string, { default: string; choices: readonly string[] }>;
  run(ctx: Context, inv: Invocation): Promise<number> | number;
}

const attest: Command = {
  summary: "sign SLSA provenance for the outputs of a Nix build",
  usage: "Usage: provenix attest [options] <./result | store path | .drv | installable>...",
  help: `For every output of the derivation that built each target, gathers the build's
facts from Nix (derivation, inputs with their NAR hashes, fixed-output sources,
Nix version and settings, build log), writes an in-toto statement with SLSA v1
provenance, signs it (DSSE in a Sigstore bundle v0.3) and keeps it in the
attestation store. Attesting the same build again with the same key stores
nothing new.

Targets:
  ./result, /nix/store/...   a build output (the derivation that made it is attested)
  /nix/store/...drv          a derivation: all its outputs (must be built, or --build)
  ./file.nix, flake#attr     an installable, evaluated with nix-instantiate / nix eval

Options:
  --build             build the derivations first (nix-store --realise)
  -A, --attr ATTR     attribute of a .nix installable
  --output NAME       attest only this output (repeatable)
  --key FILE|URI      signing key: a Nix secret key (nix-store
                      --generate-binary-cache-key), a PEM PKCS#8 Ed25519 / ECDSA
                      P-256 key, or a key in a PKCS#11 token by RFC 7512 URI
                      (pkcs11:token=T;object=L?module-path=M&pin-source=file:P;
                      or PROVENIX_PKCS11_MODULE, PROVENIX_PKCS11_PIN);
                      env PROVENIX_KEY; default ${join(configDir(), "signing.key")}
  --builder-id URI    runDetails.builder.id; env PROVENIX_BUILDER_ID
  --sbom FORMAT       also sign an SBOM (cyclonedx or spdx) of each target, as an
                      in-toto statement about its outputs (predicateType
                      https://cyclonedx.org/bom or https://spdx.dev/Document)
  --closure KIND      the SBOM's closure: runtime (default), build or both
  --claim-level N     write builder.id with slsa-build-level=N, only if
                      'provenix assess' gives this machine level N or higher
  --json              print the results as JSON

${SIGNING_HELP}`,
  options: {
    ...SIGNING_OPTIONS,
    "claim-level": { type: "string" },
    build: { type: "boolean" },
    attr: { type: "string", short: "A" },
    output: { type: "string", multiple: true },
    key: { type: "string" },
    "builder-id": { type: "string" },
    sbom: { type: "string" },
    closure: { type: "string" },
  },
  keyIsSigningKey: true,
  builderIdIsOwn: true,
  async run(ctx, inv) {
    const targets = needTargets(inv, "target to attest");
    const signer = await ctx.bundleSigner(inv, inv.values.key !== undefined);
    await claimLevel(ctx, inv.values["claim-level"]);
    const attribute = typeof inv.values.attr === "string" ? inv.values.attr : undefined;
    const only = strings(inv.values.output);
    const sbom = typeof inv.values.sbom === "string" ? sbomChoices(inv.values, "sbom") : undefined;
    // What --json prints of each, and no more: a farm's batch holds thousands.
    const results: AttestedSummary[] = [];
    const summary = (r: AttestResult<unknown>): AttestedSummary => ({
      predicateType: r.statement.predicateType,
      derivation: r.drvPath,
      subjects: r.subjects,
      attestation: {
        id: r.attestationId,
        inserted: r.inserted,
        keyid: r.keyid,
        store: ctx.store.path,
      },
      builderId: ctx.config.builderId,
    });
    // Signed statements are stored in batches, one transaction each.
    let pending: { signed: SignedStatement; statement: Statement }[] = [];
    const flush = () => {
      const ids = ctx.store.transaction(() => pending.map((p) => ctx.store.put(p.signed.record)));
      for (const [i, { signed, statement }] of pending.entries()) {
        const r: AttestResult<unknown> = {
          drvPath: signed.drvPath,
          subjects: signed.subjects,
          attestationId: (ids[i] as { id: number }).id,
          inserted: (ids[i] as { inserted: boolean }).inserted,
          keyid: signed.keyid,
          bundle: signed.bundle,
          statement,
        };
        if (inv.json) results.push(summary(r));
        else {
          inv.io.out(`attested ${r.drvPath}\n`);
          for (const s of r.subjects) inv.io.out(`  ${s.name}  sha256:${s.sha256}\n`);
          inv.io.out(stored(r, ctx.store.path));
        }
      }
      pending = [];
    };
    // Every target resolved (and built) first, so that the derivations can be read
    // ahead in a few batched queries.
    const resolved = [];
    for (const arg of targets) {
      resolved.push({
        arg,
        drvs: await derivationsFor(ctx, arg, {
          build: inv.values.build === true,
          ...(attribute ? { attribute } : {}),
        }),
      });
    }
    await ctx.derivations.prefetch(resolved.flatMap((r) => r.drvs.map((d) => d.drvPath)));
    for (const { arg, drvs } of resolved) {
      for (const d of drvs) {
        const outputs = only.length > 0 ? only : d.outputs;
        const statement = await provenanceFor(
          {
            nix: ctx.nix,
            host: ctx.host,
            builderId: ctx.config.builderId,
            provenixVersion: VERSION,
            derivations: ctx.derivations,
          },
          d.drvPath,
          {
            ...(d.installable !== undefined ? { installable: d.installable } : {}),
            ...(attribute !== undefined && d.installable !== undefined ? { attribute } : {}),
            ...(outputs ? { outputs } : {}),
            ...(d.flake ? { flake: d.flake } : {}),
          },
        );
        const signed = await signStatement(
          { signer, builderId: ctx.config.builderId },
          statement,
          d.drvPath,
        );
        pending.push({ signed, statement });
        if (pending.length >= 500) flush();
      }
      if (sbom) {
        flush();
        const parts: string[] = [];
        const roots = await sbomFor(ctx, arg, inv.values, sbom, (c) => parts.push(c));
        const document = parts.join("");
        const infos = await ctx.nix.pathInfos(roots.outputs);
        const subjects = roots.outputs.map((p) => ({
          name: p,
          sha256: infos.get(p)?.narHash ?? "",
        }));
        const signCtx = { signer, store: ctx.store, builderId: ctx.config.builderId };
        const r = await attestSbom(
          signCtx,
          roots.derivations[0] ?? "",
          subjects,
          sbom.format,
          document,
        );
        if (inv.json) results.push(summary(r));
        else
          inv.io.out(
            `attested ${sbom.format} SBOM (${sbom.closure} closure) of ${arg}\n${stored(r, ctx.store.path)}`,
          );
      }
    }
    flush();
    if (inv.json) {
      printJson(inv, results);
    }
    return EXIT.OK;
  },
};

interface AttestedSummary {
  predicateType: string;
  derivation: string;
  subjects: readonly { name: string; sha256: string }[];
  attestation: { id: number; inserted: boolean; keyid: string; store: string };
  builderId: string;
}

function stored(r: AttestResult<unknown>, store: string): string {
  return r.inserted
    ? `  signed by '${r.keyid}', stored as #${r.attestationId} in ${store}\n`
    : `  already attested by '${r.keyid}' (#${r.attestationId}); nothing new stored\n`;
}

// --- verify -------------------------------------------------------------------

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

const verify: Command = {
  summary: "verify store paths or bundle files against signed provenance",
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

// --- show / export ------------------------------------------------------------

function storedFor(ctx: Context, arg: string): { path: string; attestations: StoredAttestation[] } {
  const t = classifyTarget(arg, ctx.nix.storeDir);
  switch (t.kind) {
    case "output":
      return { path: t.path, attestations: ctx.store.find({ subjectName: t.path }) };
    case "derivation":
      return { path: t.drvPath, attestations: ctx.store.find({ derivation: t.drvPath }) };
    case "bundle":
    case "installable":
      throw new CliError(
        "INPUT",
        `'${arg}' is not a store path; show and export take ./result, a store path or a .drv`,
      );
  }
}

/** The statement inside a stored bundle, decoded for display: NOT verified. */
function decodeStatement(a: StoredAttestation): unknown {
  try {
    return JSON.parse(parseBundle(a.bundle).envelope.payload.toString("utf8"));
  } catch {
    return null;
  }
}

const show: Command = {
  summary: "list the attestations stored for a path or derivation",
  usage: "Usage: provenix show [options] <./result | store path | .drv>",
  help: `Lists what the attestation store holds for the target: id, predicate type,
builder, signing key id, time stored, subjects. The statements are decoded for
reading, not verified: use 'provenix verify' for that.

Options:
  --statement   also print each statement (decoded, unverified)
  --json        print everything as JSON, statements included`,
  options: { statement: { type: "boolean" } },
  run(ctx, inv) {
    const [arg] = needTargets(inv, "target to show");
    const { path, attestations } = storedFor(ctx, arg as string);
    if (inv.json) {
      printJson(inv, {
        path,
        attestations: attestations.map((a) => ({
          id: a.id,
          predicateType: a.predicateType,
          builderId: a.builderId,
          keyid: a.keyid,
          derivation: a.derivation,
          createdAt: a.createdAt.toISOString(),
          bundleSha256: a.bundleSha256,
          subjects: a.subjects,
          statement: decodeStatement(a),
          verified: false,
        })),
      });
      return EXIT.OK;
    }
    if (attestations.length === 0) inv.io.out(`no attestations for ${path} in ${ctx.store.path}\n`);
    for (const a of attestations) {
      inv.io.out(`#${a.id} ${a.predicateType}\n`);
      inv.io.out(
        `  builder   ${a.builderId ?? "-"}\n  key       ${a.keyid}\n  stored    ${a.createdAt.toISOString()}\n`,
      );
      if (a.derivation) inv.io.out(`  drv       ${a.derivation}\n`);
      for (const s of a.subjects) inv.io.out(`  subject   ${s.name} sha256:${s.sha256 ?? "-"}\n`);
      if (inv.values.statement) inv.io.out(JSON.stringify(decodeStatement(a), null, 2) + "\n");
    }
    return EXIT.OK;
  },
};

const exportCommand: Command = {
  summary: "write stored attestations as Sigstore bundles or in-toto JSON Lines",
  usage: "Usage: provenix export [options] <./result | store path | .drv>",
  help: `Writes the exact stored bytes, never re-serialised.

Formats:
  sigstore-bundle   the newest attestation's Sigstore bundle (.sigstore.json);
                    with --all and -o DIR, every one as DIR/<id>.sigstore.json
  intoto-jsonl      every attestation's DSSE envelope, one per line
                    (in-toto bundle, .intoto.jsonl)

Options:
  --format FORMAT   sigstore-bundle (default) or intoto-jsonl
  -o, --out PATH    write to PATH instead of stdout
  --all             every attestation (sigstore-bundle needs -o DIR)
  --predicate-type URI   only attestations of this predicate type`,
  options: {
    format: { type: "string" },
    out: { type: "string", short: "o" },
    all: { type: "boolean" },
    "predicate-type": { type: "string" },
  },
  run(ctx, inv) {
    const [arg] = needTargets(inv, "target to export");
    const format = (inv.values.format as string | undefined) ?? "sigstore-bundle";
    if (format !== "sigstore-bundle" && format !== "intoto-jsonl") {
      throw new CliError(
        "USAGE",
        `unknown format '${format}': use sigstore-bundle or intoto-jsonl`,
      );
    }
    const { path, attestations: all } = storedFor(ctx, arg as string);
    const pt = inv.values["predicate-type"];
    const attestations = typeof pt === "string" ? all.filter((a) => a.predicateType === pt) : all;
    if (attestations.length === 0)
      throw new CliError("INPUT", `no attestations for ${path} in ${ctx.store.path}`);
    const out = typeof inv.values.out === "string" ? inv.values.out : undefined;
    const written: string[] = [];
    if (format === "intoto-jsonl") {
      const lines = attestations.map((a) => {
        const b = JSON.parse(a.bundle.toString("utf8")) as { dsseEnvelope: unknown };
        return JSON.stringify(b.dsseEnvelope);
      });
      const text = lines.join("\n") + "\n";
      if (out) {
        writeFileSync(out, text);
        written.push(out);
      } else inv.io.out(text);
    } else if (inv.values.all) {
      if (!out) throw new CliError("USAGE", "--all with sigstore-bundle needs -o DIR");
      mkdirSync(out, { recursive: true });
      for (const a of attestations) {
        const file = join(out, `${a.id}.sigstore.json`);
        writeFileSync(file, a.bundle);
        written.push(file);
      }
    } else {
      const newest = attestations[attestations.length - 1] as StoredAttestation;
      if (out) {
        mkdirSync(dirname(out), { recursive: true });
        writeFileSync(out, newest.bundle);
        written.push(out);
      } else inv.io.out(newest.bundle.toString("utf8") + "\n");
    }
    if (out) {
      if (inv.json) printJson(inv, { format, written });
      else inv.io.err(`wrote ${written.join(", ")}\n`);
    }
    return EXIT.OK;
  },
};

// --- keygen -------------------------------------------------------------------

const keygen: Command = {
  summary: "make a signing key pair (Nix ed25519, or PEM Ed25519 / ECDSA P-256)",
  usage: "Usage: provenix keygen [options]",
  help: `Writes a secret key (mode 0600, never overwriting a file) and its public key
beside it (<out> with .key replaced by .pub, or <out>.pub). The Nix format is the
one 'nix-store --generate-binary-cache-key' writes, so the public key can go in
Nix's trusted-public-keys and the secret can sign binary caches too.

Options:
  --format FORMAT   nix (default), pem-ed25519 or pem-p256
  --name NAME       the Nix key name (default: provenix-<hostname>-1)
  --out PATH        the secret key file (default ${join(configDir(), "signing.key")})
  --json            print the paths and public key as JSON`,
  options: {
    format: { type: "string" },
    name: { type: "string" },
    out: { type: "string" },
  },
  async run(ctx, inv) {
    const format = (inv.values.format as string | undefined) ?? "nix";
    if (format !== "nix" && format !== "pem-ed25519" && format !== "pem-p256") {
      throw new CliError(
        "USAGE",
        `unknown key format '${format}': use nix, pem-ed25519 or pem-p256`,
      );
    }
    const name =
      (inv.values.name as string | undefined) ??
      `provenix-${(await import("node:os")).hostname()}-1`;
    const secretPath = (inv.values.out as string | undefined) ?? ctx.config.key;
    const publicPath = secretPath.endsWith(".key")
      ? secretPath.slice(0, -4) + ".pub"
      : secretPath + ".pub";
    const pair = generateKeyPair(format, name);
    mkdirSync(dirname(secretPath), { recursive: true, mode: 0o700 });
    await writeKeyPair(secretPath, publicPath, pair);
    const keyid = parseSecretKey(pair.secret).publicKey;
    const publicText = format === "nix" ? nixPublicKeyText(keyid) : pair.public.trim();
    if (inv.json)
      printJson(inv, {
        secretKey: secretPath,
        publicKey: publicPath,
        keyid: keyid.keyid,
        public: publicText,
      });
    else {
      inv.io.out(
        `secret key: ${secretPath} (mode 600; keep it private)\npublic key: ${publicPath}\nkey id:     ${keyid.keyid}\n`,
      );
      if (format === "nix")
        inv.io.out(`To trust it in Nix, add to trusted-public-keys: ${publicText}\n`);
    }
    return EXIT.OK;
  },
};

export const COMMANDS: Record<string, Command> = {
  attest,
  verify,
  sbom: sbomCommand,
  show,
  export: exportCommand,
  keygen,
  key: keyCommand,
  daemon: daemonCommand,
  status: statusCommand,
  hook: hookCommand,
  assess: assessCommand,
  push: pushCommand,
  publish: publishCommand,
  rebuild: rebuildCommand,
  consensus: consensusCommand,
  import: importCommand,
  report: reportCommand,
  vulns: vulnsCommand,
  gc: gcCommand,
};
