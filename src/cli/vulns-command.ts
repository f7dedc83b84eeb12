import { randomUUID } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { signAndStore } from "../app/attest.js";
import { closurePackages, scan } from "../app/vulns.js";
import type { ClosureKind } from "../sbom/index.js";
import { readVex, VulnDb } from "../system/vuln-db.js";
import {
  applyVex,
  atOrAbove,
  toOpenVex,
  toCycloneDxVulns,
  toSarif,
  type Decision,
  type Finding,
  type TriagedFinding,
  type VexStatement,
  vulnsStatement,
  VULNS_PREDICATE_V02,
} from "../vulns/index.js";
import { VERSION } from "../version.js";
import { needTargets, printJson, strings } from "./args.js";
import type { Command } from "./command.js";
import { vulnDbPath } from "./config.js";
import { CliError, EXIT } from "./errors.js";
import { metaFor, sbomRoots } from "./sbom-command.js";
import { SIGNING_HELP, SIGNING_OPTIONS } from "./sigstore-options.js";

const SEVERITIES = ["NONE", "LOW", "MEDIUM", "HIGH", "CRITICAL"];

export const vulnsCommand: Command = {
  usage:
    "Usage: provenix vulns [options] <./result | store path | .drv | installable>\n       provenix vulns update --from <file | dir>",
  help: `Matches every package of the closure (name and version as Nix parses them, one
per derivation) against the local vulnerability database, and lists each finding
with the advisory, its severity, the package and store paths, the matching rule
and its evidence, and the fixed versions. Versions compare by each record's
scheme: SemVer ranges by SemVer, other ranges by Nix's own ordering
(builtins.compareVersions). Decisions that produced no finding are listed too:
a CVE named by one of the derivation's patches (the finding is 'fixed'), a
development snapshot (-unstable-YYYY-MM-DD: release ranges are not compared with
dates), a range that cannot be evaluated (git commits). Nothing is dropped
silently.

'vulns update --from FILE|DIR' imports OSV records and CVE JSON 5 records
(single files, every .json under a directory as the CVE List lays them out,
and the zip archives OSV publishes per ecosystem) into the database, in one transaction; a record whose bytes are
unchanged writes nothing.

Options:
  --closure KIND      runtime (default), build, or both
  --fail-on SEVERITY  exit 1 when an affected, untriaged finding is at or above
                      LOW, MEDIUM, HIGH or CRITICAL (default: any severity;
                      findings without a severity count at every level)
  --meta FILE         package metadata, as 'nix-env -qa --meta --json' writes it
                      (an installable's own meta is read with 'nix eval'): CPEs
                      and purls of meta.identifiers match advisories by CPE
                      vendor and product and by purl, and a CPE vendor that
                      contradicts an advisory's keeps a same-named package from
                      matching; meta.knownVulnerabilities are findings
  --vex FILE          OpenVEX or CycloneDX VEX statements that triage findings
                      (repeatable): by vulnerability id or alias, and product
                      pkg:nix/name@version, pkg:nix/name, a store path or a
                      package name; statements that match nothing are reported
  --vex-max-age DAYS  statements made or last updated longer ago (or with no
                      time) are expired: not applied, and reported
  --openvex FILE      write the result as an OpenVEX document
  --sarif FILE        write the result as SARIF 2.1.0 (findings triaged away are
                      suppressed results, with the reason)
  --cyclonedx FILE    write a CycloneDX 1.6 BOM of the affected packages with
                      their vulnerabilities and analysis
  --attest            sign the scan as an in-toto statement about the outputs
                      (predicate https://in-toto.io/attestation/vulns/v0.2) and
                      keep it in the attestation store ('provenix export' gives it)
  --key FILE|URI      the signing key for --attest (as for attest)
  --db FILE           the database (default ${join("$XDG_DATA_HOME", "provenix", "vulns.db")})
  --from PATH         (update) the records to import
  --json              print the result as JSON

${SIGNING_HELP}

Exit status: 0 when nothing affected at or above --fail-on was found, 1 when
something was, 3 for a malformed record (named, with the file), otherwise as for
every command.`,
  options: {
    closure: { type: "string" },
    "fail-on": { type: "string" },
    db: { type: "string" },
    from: { type: "string" },
    vex: { type: "string", multiple: true },
    "vex-max-age": { type: "string" },
    meta: { type: "string" },
    openvex: { type: "string" },
    sarif: { type: "string" },
    cyclonedx: { type: "string" },
    attest: { type: "boolean" },
    key: { type: "string" },
    ...SIGNING_OPTIONS,
  },
  keyIsSigningKey: true,
  async run(ctx, inv) {
    const dbPath = vulnDbPath(inv.values.db);
    if (inv.positionals[0] === "update") {
      const from = inv.values.from;
      if (typeof from !== "string" || inv.positionals.length > 1) {
        throw new CliError("USAGE", "vulns update takes --from <file | dir>");
      }
      const db = VulnDb.open(dbPath);
      try {
        const r = await db.importFrom(from);
        if (inv.json) printJson(inv, { db: db.path, ...r, advisories: db.count() });
        else
          inv.io.out(
            `imported ${r.files} record(s) from ${from}: ${r.added} new, ${r.updated} updated, ${r.unchanged} unchanged; ${db.count()} advisories in ${db.path}\n`,
          );
      } finally {
        db.close();
      }
      return EXIT.OK;
    }
    const closure = (inv.values.closure ?? "runtime") as ClosureKind;
    if (!["runtime", "build", "both"].includes(closure)) {
      throw new CliError("USAGE", "--closure takes runtime, build or both");
    }
    const failOn =
      typeof inv.values["fail-on"] === "string" ? inv.values["fail-on"].toUpperCase() : "NONE";
    if (!SEVERITIES.includes(failOn)) {
      throw new CliError("USAGE", "--fail-on takes LOW, MEDIUM, HIGH or CRITICAL");
    }
    const db = VulnDb.open(dbPath);
    try {
      if (db.count() === 0) {
        throw new CliError(
          "INPUT",
          `the vulnerability database ${db.path} is empty: run 'provenix vulns update --from ...'`,
        );
      }
      const statements = strings(inv.values.vex).flatMap(readVex);
      const maxAge = inv.values["vex-max-age"];
      const vexOptions =
        typeof maxAge === "string"
          ? { maxAgeDays: positiveDays(maxAge, "--vex-max-age"), now: new Date() }
          : {};
      const expired = new Set<VexStatement>();
      const all = [];
      const triagedAll: TriagedFinding[] = [];
      const decisionsAll: Decision[] = [];
      const used = new Set<VexStatement>();
      let failing = false;
      const signer =
        inv.values.attest === true
          ? await ctx.bundleSigner(inv, inv.values.key !== undefined)
          : undefined;
      for (const arg of needTargets(inv, "target to scan")) {
        const started = new Date();
        const roots = await sbomRoots(ctx, arg, { build: false });
        const packages = await closurePackages(
          ctx.nix,
          roots,
          closure,
          await metaFor(roots, inv.values.meta),
        );
        const scanned = scan(db, packages);
        const triaged = applyVex(scanned.findings, statements, vexOptions);
        for (const st of triaged.expired) expired.add(st);
        for (const st of statements)
          if (!triaged.unmatched.includes(st) && !triaged.expired.includes(st)) used.add(st);
        const r = { ...scanned, findings: triaged.findings };
        triagedAll.push(...triaged.findings);
        decisionsAll.push(...scanned.decisions);
        let attestation: { id: number; inserted: boolean } | undefined;
        if (signer) {
          if (roots.outputs.length === 0) {
            throw new CliError("INPUT", `${arg} is not built: a scan attestation is about outputs`);
          }
          const infos = await ctx.nix.pathInfos(roots.outputs);
          const subjects = roots.outputs.map((name) => ({
            name,
            sha256: infos.get(name)?.narHash ?? "",
          }));
          const statement = vulnsStatement(subjects, r, {
            version: VERSION,
            dbUri: pathToFileURL(db.path).href,
            dbUpdated: db.updatedAt() ?? new Date(0),
            started,
            finished: new Date(),
          });
          const stored = await signAndStore(
            { signer, store: ctx.store, builderId: ctx.config.builderId },
            statement,
            roots.derivations[0] ?? "",
          );
          attestation = { id: stored.attestationId, inserted: stored.inserted };
          if (!inv.json)
            inv.io.out(
              `signed the scan (${VULNS_PREDICATE_V02}) and stored it as #${stored.attestationId}\n`,
            );
        }
        const bad = r.findings.filter(
          (f) => f.status === "affected" && atOrAbove(f.rating, failOn),
        );
        failing ||= bad.length > 0;
        all.push({
          ...(attestation ? { attestation } : {}),
          target: arg,
          closure,
          db: db.path,
          dbUpdated: db.updatedAt()?.toISOString(),
          ...r,
        });
        if (!inv.json) {
          inv.io.out(
            `${arg}: ${r.packages} package(s) in the ${closure} closure, ${r.findings.filter((f) => f.status === "affected").length} affected finding(s), ${r.findings.filter((f) => f.status !== "affected").length} triaged or fixed\n`,
          );
          for (const f of r.findings) inv.io.out(renderFinding(f));
          for (const d of r.decisions)
            inv.io.out(`  note ${d.advisory} ${d.package}: ${d.reason}\n`);
        }
      }
      const unmatched = statements.filter((st) => !used.has(st) && !expired.has(st));
      if (typeof inv.values.openvex === "string") {
        const doc = toOpenVex(triagedAll, {
          id: `urn:uuid:${randomUUID()}`,
          author: "provenix",
          timestamp: new Date(),
          tool: `provenix ${VERSION}`,
        });
        if (doc) writeFileSync(inv.values.openvex, JSON.stringify(doc, null, 2) + "\n");
        else inv.io.err(`no findings: no OpenVEX document written to ${inv.values.openvex}\n`);
      }
      const write = (file: unknown, doc: unknown) => {
        if (typeof file === "string") writeFileSync(file, JSON.stringify(doc, null, 2) + "\n");
      };
      write(inv.values.sarif, toSarif(triagedAll, decisionsAll, { version: VERSION }));
      write(
        inv.values.cyclonedx,
        toCycloneDxVulns(triagedAll, {
          version: VERSION,
          serialNumber: `urn:uuid:${randomUUID()}`,
          timestamp: new Date(),
        }),
      );
      if (inv.json)
        printJson(inv, { scans: all, unmatchedVex: unmatched, expiredVex: [...expired] });
      else {
        for (const st of unmatched)
          inv.io.out(
            `unmatched VEX statement ${st.source}: ${st.vulnerability} for ${st.products.join(", ")}\n`,
          );
        for (const st of expired)
          inv.io.out(
            `expired VEX statement ${st.source}: ${st.vulnerability} (${st.timestamp ?? "no time given"}), not applied\n`,
          );
      }
      return failing ? EXIT.VERIFY_FAILED : EXIT.OK;
    } finally {
      db.close();
    }
  },
};

function renderFinding(f: Finding): string {
  const sev = f.severity.find((s) => s.score !== undefined);
  return (
    `  ${f.status.padEnd(9)} ${f.advisory}${f.aliases.length > 0 ? ` (${f.aliases.join(", ")})` : ""} ${f.rating}${sev ? ` ${sev.score ?? ""} ${sev.vector ?? ""}` : ""}\n` +
    `            ${f.package.name} ${f.package.version}${f.package.paths[0] ? ` ${f.package.paths[0]}` : ""}\n` +
    `            ${f.rule}: ${f.evidence}${f.fixedVersions.length > 0 ? `; fixed in ${f.fixedVersions.join(", ")}` : ""}\n` +
    (f.reason ? `            ${f.reason}\n` : "")
  );
}

function positiveDays(v: string, option: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1)
    throw new CliError("USAGE", `${option} takes a number of days`);
  return n;
}
