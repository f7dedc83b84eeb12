import { join } from "node:path";
import { type Statement } from "../attest/index.js";
import {
  provenanceFor,
  signStatement,
  type AttestResult,
  type SignedStatement,
} from "../app/attest.js";
import { derivationsFor, needTargets, printJson, strings } from "./args.js";
import { VERSION } from "../version.js";
import { configDir } from "./config.js";
import { sbomChoices, sbomFor } from "./sbom-command.js";
import { attestSbom } from "../app/sbom.js";
import { collect, type SbomRoots } from "../sbom/index.js";
import { claimLevel } from "./assess-command.js";
import { SIGNING_HELP, SIGNING_OPTIONS } from "./sigstore-options.js";
import type { Command } from "./command.js";
import { EXIT } from "./errors.js";

export const attestCommand: Command = {
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
    // Statements are written and signed a batch at a time, and each batch stored in
    // one transaction.
    let pending: Promise<{ signed: SignedStatement; statement: Statement }>[] = [];
    const flush = async () => {
      const batch = await Promise.all(pending);
      pending = [];
      const ids = ctx.store.transaction(() => batch.map((p) => ctx.store.put(p.signed.record)));
      for (const [i, { signed, statement }] of batch.entries()) {
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
        // Not awaited one by one: a batch's statements are written while their build
        // logs are read and their signatures made, on the thread pool.
        const signing = provenanceFor(
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
        ).then(async (statement) => ({
          signed: await signStatement(
            { signer, builderId: ctx.config.builderId },
            statement,
            d.drvPath,
          ),
          statement,
        }));
        signing.catch(() => undefined); // its failure is reported by flush, not as unhandled
        pending.push(signing);
        if (pending.length >= BATCH) await flush();
      }
      if (sbom) {
        await flush();
        let roots: SbomRoots = { outputs: [], derivations: [] };
        const document = await collect(async (sink) => {
          roots = await sbomFor(ctx, arg, inv.values, sbom, sink);
        });
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
    await flush();
    if (inv.json) {
      printJson(inv, results);
    }
    return EXIT.OK;
  },
};

/** Attestations stored per transaction: 500 took 1.7x as long as 2,000 at 40,000 (SQLite's WAL rewrites each touched index page per commit). */
const BATCH = 2000;

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
