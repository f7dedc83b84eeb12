// provenix vulns on real advisories (test/fixtures/vulns, copied from their public
// databases) against packages named as nixpkgs names them, built by real Nix.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import test from "node:test";
import Database from "better-sqlite3";
import { cliHome, isOneLineError, provenix } from "../helpers/cli.js";
import { cosignVerifyBlob } from "../helpers/cosign.js";
import { Daemon } from "../helpers/daemon.js";
import { FIXTURES, run, tempDir, useTestNix } from "../helpers/nix.js";
import { cycloneDxErrors, openVexErrors, sarifErrors } from "../helpers/schemas.js";

useTestNix();
const SALT = `vulns-${process.pid}-${Date.now()}`;
const RECORDS = join(FIXTURES, "vulns");

/** An attribute of test/fixtures/vulns.nix, built: its output path. */
function buildFixture(attr: string, salt = SALT): string {
  return run("nix-build", [
    join(FIXTURES, "vulns.nix"),
    ...["-A", attr, "--argstr", "salt", salt, "--no-out-link"],
  ]).trim();
}

/** An OpenVEX 0.2.0 document by the test's security team. */
function openVex(id: string, statements: unknown[]): string {
  return JSON.stringify({
    "@context": "https://openvex.dev/ns/v0.2.0",
    "@id": id,
    author: "Security team",
    timestamp: "2026-11-30T00:00:00Z",
    version: 1,
    statements,
  });
}

interface Scan {
  packages: number;
  findings: {
    advisory: string;
    aliases: string[];
    rating: string;
    status: string;
    package: { name: string; version: string; paths: string[] };
    rule: string;
    evidence: string;
    reason?: string;
    fixedVersions: string[];
  }[];
  decisions: { advisory: string; package: string; decision: string; reason: string }[];
}

test("vulns update imports OSV and CVE JSON 5 records once; a malformed record anywhere leaves the database as it was", () => {
  const env = cliHome();
  const first = provenix(["vulns", "update", "--json", "--from", RECORDS], env);
  assert.equal(first.code, 0, first.stderr);
  assert.deepEqual(JSON.parse(first.stdout), {
    db: join(env.XDG_DATA_HOME ?? "", "provenix", "vulns.db"),
    files: 7,
    added: 7,
    updated: 0,
    unchanged: 0,
    advisories: 7,
  });
  const again = JSON.parse(
    provenix(["vulns", "update", "--json", "--from", RECORDS], env).stdout,
  ) as {
    unchanged: number;
    added: number;
  };
  assert.deepEqual([again.added, again.unchanged], [0, 7]);

  // A database of an earlier normalised form is normalised again from the stored
  // records when opened: here its index is gone, and comes back with CPE keys.
  const dbFile = join(env.XDG_DATA_HOME ?? "", "provenix", "vulns.db");
  const raw = new Database(dbFile);
  raw.exec("DELETE FROM names; UPDATE meta SET value = '1' WHERE key = 'format'");
  raw.close();
  assert.equal(provenix(["vulns", "update", "--from", RECORDS], env).code, 0);
  const reopened = new Database(dbFile, { readonly: true });
  const keys = reopened
    .prepare("SELECT name FROM names WHERE id = 'CVE-2025-32463' ORDER BY name")
    .all() as { name: string }[];
  reopened.close();
  assert.deepEqual(
    keys.map((k) => k.name),
    ["cpe:sudo_project:sudo", "sudo"],
  );

  const bad = tempDir("provenix-records-");
  cpSync(RECORDS, bad, { recursive: true });
  mkdirSync(join(bad, "more"));
  writeFileSync(join(bad, "more", "OSV-2099-1.json"), JSON.stringify({ id: "OSV-2099-1" }));
  writeFileSync(join(bad, "more", "broken.json"), "{ not json");
  const r = provenix(["vulns", "update", "--from", bad], env);
  assert.equal(r.code, 3, r.stderr);
  assert.ok(isOneLineError(r), r.stderr);
  assert.match(r.stderr, /OSV-2099-1\.json: not an OSV record|broken\.json: not JSON/);
  const count = JSON.parse(
    provenix(["vulns", "update", "--json", "--from", RECORDS], env).stdout,
  ) as {
    advisories: number;
  };
  assert.equal(count.advisories, 7, "the failed import added nothing");

  // An archive as OSV publishes them (all.zip of an ecosystem), written by Python's zipfile.
  const zip = join(tempDir(), "all.zip");
  execFileSync("python3", [
    "-c",
    "import sys, zipfile\nwith zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED) as z:\n  [z.write(f, f.split('/')[-1]) for f in sys.argv[2:]]",
    zip,
    join(RECORDS, "GHSA-rxwq-x6h5-x525.json"),
    join(RECORDS, "CVE-2023-38545.json"),
    join(RECORDS, "README.md"),
  ]);
  const fresh = cliHome();
  const z = provenix(["vulns", "update", "--json", "--from", zip], fresh);
  assert.equal(z.code, 0, z.stderr);
  const zr = JSON.parse(z.stdout) as { files: number; added: number };
  assert.deepEqual([zr.files, zr.added], [2, 2]);
  const notZip = join(tempDir(), "broken.zip");
  writeFileSync(notZip, "PK not really");
  const nz = provenix(["vulns", "update", "--from", notZip], fresh);
  assert.equal(nz.code, 3, nz.stderr);
  assert.ok(isOneLineError(nz), nz.stderr);
  assert.match(nz.stderr, /broken\.zip: not a zip archive/);
});

test("vulns matches by Nix name and version with each record's ordering, honours CVE patches, skips development snapshots, and says why", async () => {
  const env = cliHome();
  assert.equal(provenix(["vulns", "update", "--from", RECORDS], env).code, 0);
  const top = buildFixture("top");
  const r = provenix(["vulns", "--json", top], env);
  assert.equal(r.code, 1, r.stderr + r.stdout);
  const [scan] = (JSON.parse(r.stdout) as { scans: Scan[] }).scans;
  assert.ok(scan);
  const found = scan.findings
    .map((f) => [f.advisory, `${f.package.name}-${f.package.version}`, f.status])
    .sort();
  assert.deepEqual(found, [
    ["GHSA-rxwq-x6h5-x525", "xz-5.6.1", "affected"],
    ["GHSA-rxwq-x6h5-x525", "xz-5.6.1", "fixed"],
    // The record names no fixed version: 5.6.2, which removed the backdoor, matches too.
    ["GHSA-rxwq-x6h5-x525", "xz-5.6.2", "affected"],
  ]);
  const patched = scan.findings.find((f) => f.status === "fixed");
  assert.match(patched?.reason ?? "", /applies CVE-2024-3094\.patch/);
  const hit = scan.findings.find((f) => f.status === "affected");
  assert.equal(hit?.rating, "CRITICAL");
  assert.deepEqual(hit?.aliases, ["CVE-2024-3094"]);
  assert.match(hit?.evidence ?? "", /xz \(Debian:13\) = xz; 5\.6\.\d: >= 5\.6\.0 \(nix ordering\)/);
  assert.ok(hit?.package.paths[0]?.startsWith("/nix/store/"));
  assert.deepEqual(
    scan.decisions.map((d) => [d.advisory, d.package, d.decision]),
    [["GHSA-rxwq-x6h5-x525", "xz-unstable-2024-03-01", "unstable-version"]],
  );
  // curl: the CVE record's only affected range is empty (version 8.4.0, lessThan 8.4.0),
  // so neither curl is reported: what the record says, read literally.
  assert.ok(!scan.findings.some((f) => f.package.name === "curl"));
  // pxz has a similar name and is not matched.
  assert.ok(!scan.findings.some((f) => f.package.name === "pxz"));

  const text = provenix(["vulns", top], env);
  assert.equal(text.code, 1);
  assert.match(
    text.stdout,
    /affected {2}GHSA-rxwq-x6h5-x525 \(CVE-2024-3094\) CRITICAL 10 CVSS:3\.1/,
  );
  assert.match(
    text.stdout,
    /note GHSA-rxwq-x6h5-x525 xz-unstable-2024-03-01: unstable-2024-03-01 is a development snapshot/,
  );

  // Triage with OpenVEX: 5.6.2 is not affected (the backdoor was removed), and a
  // statement about something this closure does not have is reported as unmatched.
  const dir = tempDir();
  const vex = join(dir, "triage.openvex.json");
  writeFileSync(
    vex,
    openVex("https://example.org/vex/1", [
      {
        vulnerability: { name: "CVE-2024-3094" },
        products: [{ "@id": "pkg:nix/xz@5.6.2" }],
        status: "not_affected",
        justification: "vulnerable_code_not_present",
      },
      {
        vulnerability: { name: "CVE-2099-0001" },
        products: [{ "@id": "pkg:nix/curl" }],
        status: "affected",
        action_statement: "none",
      },
    ]),
  );
  const out = join(dir, "result.openvex.json");
  const sarifFile = join(dir, "result.sarif");
  const cdxFile = join(dir, "result.cdx.json");
  const triaged = provenix(
    [
      "vulns",
      "--json",
      "--vex",
      vex,
      "--openvex",
      out,
      "--sarif",
      sarifFile,
      "--cyclonedx",
      cdxFile,
      top,
    ],
    env,
  );
  assert.equal(triaged.code, 1, "xz 5.6.1 is still affected and untriaged");
  const t = JSON.parse(triaged.stdout) as {
    scans: Scan[];
    unmatchedVex: { vulnerability: string }[];
  };
  const v562 = t.scans[0]?.findings.find((f) => f.package.version === "5.6.2");
  assert.equal(v562?.status, "not_affected");
  assert.match(v562?.reason ?? "", /VEX .*triage\.openvex\.json#0: vulnerable_code_not_present/);
  assert.deepEqual(
    t.unmatchedVex.map((s) => s.vulnerability),
    ["CVE-2099-0001"],
  );
  const doc = JSON.parse(readFileSync(out, "utf8")) as {
    statements: { status: string; products: { "@id": string }[] }[];
  };
  assert.equal(openVexErrors(doc), null, "the OpenVEX output is valid against OpenVEX's schema");
  assert.deepEqual(doc.statements.map((s) => [s.products[0]?.["@id"], s.status]).sort(), [
    ["pkg:nix/xz@5.6.1", "affected"],
    ["pkg:nix/xz@5.6.1", "fixed"],
    ["pkg:nix/xz@5.6.2", "not_affected"],
  ]);
  // SARIF and CycloneDX, each valid against its own schema.
  const sarifDoc = JSON.parse(readFileSync(sarifFile, "utf8")) as {
    runs: { results: { ruleId: string; level: string; suppressions?: unknown[] }[] }[];
  };
  assert.equal(sarifErrors(sarifDoc), null, JSON.stringify(sarifErrors(sarifDoc)));
  assert.deepEqual(
    sarifDoc.runs[0]?.results.map((x) => [x.ruleId, x.level, x.suppressions !== undefined]).sort(),
    [
      ["GHSA-rxwq-x6h5-x525", "error", false],
      ["GHSA-rxwq-x6h5-x525", "error", true],
      ["GHSA-rxwq-x6h5-x525", "error", true],
    ],
  );
  const cdx = readFileSync(cdxFile, "utf8");
  assert.equal(await cycloneDxErrors(cdx, "1.6"), null);
  const bom = JSON.parse(cdx) as {
    vulnerabilities: {
      id: string;
      affects: { ref: string }[];
      analysis?: { state: string; justification?: string };
    }[];
  };
  assert.deepEqual(
    bom.vulnerabilities
      .map((x) => [
        x.affects.map((a) => a.ref).join(" "),
        x.analysis?.state ?? "none",
        x.analysis?.justification ?? "",
      ])
      .sort(),
    [
      ["pkg:nix/xz@5.6.1", "none", ""],
      ["pkg:nix/xz@5.6.1", "resolved", ""],
      ["pkg:nix/xz@5.6.2", "not_affected", "code_not_present"],
    ],
  );
  // Once everything is triaged, nothing fails.
  const all = join(dir, "all.openvex.json");
  writeFileSync(
    all,
    openVex("https://example.org/vex/2", [
      {
        vulnerability: { name: "GHSA-rxwq-x6h5-x525" },
        products: [{ "@id": "xz" }],
        status: "under_investigation",
      },
    ]),
  );
  assert.equal(provenix(["vulns", "--vex", all, top], env).code, 0);
  const malformed = join(dir, "bad.openvex.json");
  writeFileSync(
    malformed,
    JSON.stringify({
      "@context": "https://openvex.dev/ns/v0.2.0",
      statements: [{ vulnerability: { name: "CVE-1" }, products: ["xz"], status: "not_affected" }],
    }),
  );
  const bad = provenix(["vulns", "--vex", malformed, top], env);
  assert.equal(bad.code, 3, bad.stderr);
  assert.ok(isOneLineError(bad), bad.stderr);
  assert.match(
    bad.stderr,
    /statements\[0\]: not_affected needs a justification or an impact_statement/,
  );

  const empty = provenix(["vulns", "--db", join(tempDir(), "none.db"), top], env);
  assert.equal(empty.code, 3);
  assert.match(empty.stderr, /is empty: run 'provenix vulns update/);
  assert.equal(provenix(["vulns", "--fail-on", "severe", top], env).code, 2);
});

test("accuracy on openssl, glibc and sudo records: SemVer and Nix ranges, distribution records, sources, CPEs and knownVulnerabilities from --meta, CycloneDX VEX", async () => {
  const env = cliHome();
  assert.equal(provenix(["vulns", "update", "--from", RECORDS], env).code, 0);
  const top = buildFixture("accuracy");
  const scanOf = (args: string[], code = 1): Scan => {
    const r = provenix(["vulns", "--json", ...args, top], env);
    assert.equal(r.code, code, r.stderr + r.stdout);
    return (JSON.parse(r.stdout) as { scans: Scan[] }).scans[0] as Scan;
  };
  const scan = scanOf([]);
  const found = scan.findings
    .map((f) => `${f.advisory} ${f.package.name}-${f.package.version} ${f.status} ${f.rule}`)
    .sort();
  assert.deepEqual(found, [
    "CVE-2023-4911 glibc-2.38 affected name and version",
    "CVE-2023-4911 glibc-locales-2.38 affected source file name",
    "CVE-2024-0727 openssl-1.1.1w affected name and version",
    "CVE-2024-12797 openssl-3.3.2 affected name and version",
    // nixpkgs' fix is in a release-branch patch that names no CVE: a false positive VEX can settle.
    "CVE-2024-2961 glibc-2.38 affected name and version",
    "CVE-2024-2961 glibc-2.39-52 affected name and version",
    "CVE-2024-2961 glibc-locales-2.38 affected source file name",
    "CVE-2025-32463 sudo-1.9.16p2 affected name and version",
    // Fixed by a fetched patch whose URL, not its name, names the CVE.
    "GHSA-rxwq-x6h5-x525 xz-5.6.1 fixed name and version",
  ]);
  const byId = (id: string, pkg: string) =>
    scan.findings.find(
      (f) => f.advisory === id && `${f.package.name}-${f.package.version}` === pkg,
    );
  assert.match(
    byId("GHSA-rxwq-x6h5-x525", "xz-5.6.1")?.reason ?? "",
    /applies https:\/\/security\.example\.org\/patches\/xz\/CVE-2024-3094\.patch/,
  );
  assert.match(
    byId("CVE-2024-12797", "openssl-3.3.2")?.evidence ?? "",
    /3\.3\.2: >= 3\.3\.0, < 3\.3\.3 \(semver ordering\)/,
  );
  assert.match(
    byId("CVE-2025-32463", "sudo-1.9.16p2")?.evidence ?? "",
    /< 1\.9\.17p1 \(nix ordering\)/,
  );
  assert.match(
    byId("CVE-2023-4911", "glibc-locales-2.38")?.evidence ?? "",
    /the name in glibc-locales's source mirror:\/\/gnu\/glibc\/glibc-2\.38\.tar\.xz/,
  );
  // The Ubuntu record's ranges are Ubuntu's builds, compared by their upstream part
  // (1.1.1w < 3.0.2), and the finding says so.
  assert.match(
    byId("CVE-2024-0727", "openssl-1.1.1w")?.evidence ?? "",
    /Ubuntu:22\.04:LTS are that distribution's builds/,
  );
  // 3.0.12 is affected upstream (fixed in 3.0.13), but Ubuntu's fixes are backports:
  // no finding, and a decision that says why.
  const d3012 = scan.decisions.find((d) => d.package === "openssl-3.0.12");
  assert.equal(d3012?.decision, "distribution-record");
  assert.match(
    d3012?.reason ?? "",
    /backports that upstream 3\.0\.12 lacks.*Ubuntu:24\.04:LTS: 3\.0\.12 is not below its fixed build's upstream version 3\.0\.10/,
  );
  assert.match(d3012?.reason ?? "", /Ubuntu:Pro:14\.04:LTS: no build of it is fixed yet/);
  // Similar names and the boundaries are not matched.
  for (const p of [
    "openssl-3.3.3",
    "openssl-3.0.15",
    "glibc-2.40",
    "sudo-1.9.17p1",
    "sudo-1.9.13p3",
    "sudo-rs-0.2.6",
  ])
    assert.ok(!scan.findings.some((f) => `${f.package.name}-${f.package.version}` === p), p);

  // --meta as nix-env -qa --meta --json writes it: sudo's CPE (nixpkgs'
  // meta.identifiers), and a knownVulnerabilities entry on openssl 1.1.1w.
  const dir = tempDir();
  const meta = join(dir, "meta.json");
  writeFileSync(
    meta,
    JSON.stringify({
      sudo: {
        name: "sudo-1.9.16p2",
        pname: "sudo",
        version: "1.9.16p2",
        meta: {
          identifiers: {
            cpeParts: { part: "a", vendor: "sudo_project", product: "sudo", version: "1.9.16p2" },
            cpe: "cpe:2.3:a:sudo_project:sudo:1.9.16p2:*:*:*:*:*:*:*",
            possibleCPEs: [{ cpe: "cpe:2.3:a:sudo_project:sudo:1.9.16p2:*:*:*:*:*:*:*" }],
          },
        },
      },
      openssl_1_1: {
        name: "openssl-1.1.1w",
        meta: { knownVulnerabilities: ["OpenSSL 1.1 is reaching its end of life on 2023/09/11"] },
      },
    }),
  );
  const withMeta = scanOf(["--meta", meta]);
  assert.equal(
    withMeta.findings.find((f) => f.advisory === "CVE-2025-32463")?.rule,
    "CPE",
    "the CPE names sudo more precisely than its name",
  );
  const known = withMeta.findings.find((f) => f.rule === "meta.knownVulnerabilities");
  assert.equal(known?.advisory, "nixpkgs:knownVulnerabilities");
  assert.equal(`${known?.package.name}-${known?.package.version}`, "openssl-1.1.1w");

  // CycloneDX VEX: glibc-locales has no iconv code (not_affected), glibc 2.39-52
  // has the release-branch fix (resolved); a statement older than --vex-max-age is
  // expired and not applied.
  const cdxVex = join(dir, "triage.cdx.json");
  const vexDoc = {
    bomFormat: "CycloneDX",
    specVersion: "1.6",
    version: 1,
    components: [{ type: "library", "bom-ref": "locales", name: "glibc-locales", version: "2.38" }],
    vulnerabilities: [
      {
        id: "CVE-2024-2961",
        analysis: {
          state: "not_affected",
          justification: "code_not_present",
          lastUpdated: "2026-11-20T00:00:00Z",
        },
        affects: [{ ref: "locales" }],
      },
      {
        id: "CVE-2024-2961",
        analysis: {
          state: "resolved",
          detail: "2.39-master.patch",
          lastUpdated: "2025-01-01T00:00:00Z",
        },
        affects: [{ ref: "pkg:nix/glibc@2.39-52" }],
      },
    ],
  };
  assert.equal(
    await cycloneDxErrors(JSON.stringify(vexDoc), "1.6"),
    null,
    "the VEX is valid CycloneDX",
  );
  writeFileSync(cdxVex, JSON.stringify(vexDoc));
  const triaged = scanOf(["--vex", cdxVex]);
  const st = (id: string, pkg: string) =>
    triaged.findings.find(
      (f) => f.advisory === id && `${f.package.name}-${f.package.version}` === pkg,
    )?.status;
  assert.equal(st("CVE-2024-2961", "glibc-locales-2.38"), "not_affected");
  assert.equal(st("CVE-2024-2961", "glibc-2.39-52"), "fixed");
  const r = provenix(["vulns", "--json", "--vex", cdxVex, "--vex-max-age", "365", top], env);
  const aged = JSON.parse(r.stdout) as { scans: Scan[]; expiredVex: { source: string }[] };
  assert.deepEqual(
    aged.expiredVex.map((x) => x.source),
    [`${cdxVex}#1`],
  );
  assert.equal(
    aged.scans[0]?.findings.find((f) => f.package.version === "2.39-52")?.status,
    "affected",
    "the expired statement is not applied",
  );
  const broken = join(dir, "broken.cdx.json");
  writeFileSync(
    broken,
    JSON.stringify({
      ...vexDoc,
      vulnerabilities: [
        { id: "CVE-1", analysis: { state: "fine" }, affects: [{ ref: "locales" }] },
      ],
    }),
  );
  const bad = provenix(["vulns", "--vex", broken, top], env);
  assert.equal(bad.code, 3, bad.stderr);
  assert.ok(isOneLineError(bad), bad.stderr);
  assert.match(
    bad.stderr,
    /broken\.cdx\.json: vulnerabilities\[0\]: analysis\.state must be one of/,
  );

  // A database file that is not one: a one-line error naming it, exit 5.
  const garbage = join(dir, "garbage.db");
  writeFileSync(garbage, "not a SQLite database, just text ".repeat(200));
  const damaged = provenix(["vulns", "--db", garbage, top], env);
  assert.equal(damaged.code, 5, damaged.stderr);
  assert.ok(isOneLineError(damaged), damaged.stderr);
  assert.match(damaged.stderr, /vulnerability database .*garbage\.db/);
});

test("vulns --attest signs the scan as an in-toto vulns v0.2 statement about the outputs; cosign verifies it", () => {
  const env = cliHome();
  assert.equal(provenix(["keygen", "--format", "pem-p256"], env).code, 0);
  assert.equal(provenix(["vulns", "update", "--from", RECORDS], env).code, 0);
  const top = buildFixture("top", `${SALT}-attest`);
  const r = provenix(["vulns", "--json", "--attest", top], env);
  assert.equal(r.code, 1, r.stderr);
  const [scan] = (JSON.parse(r.stdout) as { scans: { attestation?: { id: number } }[] }).scans;
  assert.ok(scan?.attestation?.id);
  const dir = tempDir();
  assert.equal(provenix(["export", "--all", "-o", dir, top], env).code, 0);
  const [file = ""] = readdirSync(dir);
  const bundle = JSON.parse(readFileSync(join(dir, file), "utf8")) as {
    dsseEnvelope: { payload: string };
  };
  const statement = JSON.parse(Buffer.from(bundle.dsseEnvelope.payload, "base64").toString()) as {
    subject: { name: string }[];
    predicateType: string;
    predicate: { scanner: { result: { id: string; annotations: Record<string, unknown>[] }[] } };
  };
  assert.equal(statement.predicateType, "https://in-toto.io/attestation/vulns/v0.2");
  assert.deepEqual(
    statement.subject.map((s) => s.name),
    [top],
  );
  assert.ok(
    statement.predicate.scanner.result.some(
      (x) => x.id === "GHSA-rxwq-x6h5-x525" && x.annotations.some((a) => a.status === "fixed"),
    ),
  );
  const pem = join(dir, "key.pem");
  assert.equal(provenix(["key", "export", "--out", pem], env).code, 0);
  const nar = join(dir, "top.nar");
  writeFileSync(nar, execFileSync("nix-store", ["--dump", top], { maxBuffer: 1 << 30 }));
  const c = cosignVerifyBlob(
    join(dir, file),
    pem,
    "https://in-toto.io/attestation/vulns/v0.2",
    nar,
  );
  assert.equal(c.code, 0, c.stderr);
});

test("require.vulnerabilities in a policy: verify --policy fails the paths an untriaged advisory affects, with its id; VEX triage and the database age count", () => {
  const env = cliHome();
  assert.equal(provenix(["keygen"], env).code, 0);
  assert.equal(provenix(["vulns", "update", "--from", RECORDS], env).code, 0);
  const top = buildFixture("top", `${SALT}-policy`);
  const closure = run("nix-store", ["--query", "--requisites", top]).trim().split("\n");
  const attested = provenix(["attest", ...closure.filter((p) => !p.endsWith(".patch"))], env);
  assert.equal(attested.code, 0, attested.stderr);
  const pub = readFileSync(
    join(env.XDG_CONFIG_HOME ?? "", "provenix", "signing.pub"),
    "utf8",
  ).trim();
  const dir = tempDir();
  const policy = (name: string, vulns: string) => {
    const f = join(dir, name);
    writeFileSync(
      f,
      `apiVersion: provenix.dev/policy/v1\nbuilders:\n  - keys: ["${pub}"]\nrequire:\n  vulnerabilities:\n${vulns}`,
    );
    return f;
  };
  interface Result {
    ok: boolean;
    reason?: string;
    paths: { path: string; ok: boolean; reason?: string }[];
  }
  const verify = (file: string, code: number) => {
    const r = provenix(["verify", "--json", "--policy", file, "--closure", "runtime", top], env);
    assert.equal(r.code, code, r.stdout + r.stderr);
    return JSON.parse(r.stdout) as Result;
  };
  const strict = verify(policy("strict.yaml", "    maxSeverity: HIGH\n"), 1);
  const failing = strict.paths.filter((p) => !p.ok);
  assert.equal(failing.length, 2, JSON.stringify(failing));
  for (const p of failing) {
    assert.match(p.path, /-xz-5\.6\.[12]$/);
    assert.match(
      p.reason ?? "",
      /GHSA-rxwq-x6h5-x525 \(CRITICAL\) affects xz-5\.6\.[12], untriaged/,
    );
  }

  const vex = join(dir, "xz.openvex.json");
  writeFileSync(
    vex,
    openVex("https://example.org/vex/xz", [
      {
        vulnerability: { name: "CVE-2024-3094" },
        products: [{ "@id": "xz" }],
        status: "not_affected",
        justification: "vulnerable_code_not_in_execute_path",
      },
    ]),
  );
  const triaged = verify(
    policy("triaged.yaml", "    maxSeverity: HIGH\n    vex: [xz.openvex.json]\n"),
    0,
  );
  assert.ok(triaged.ok);

  // An affected triage above the limit still fails, and a stale database fails everything.
  const db = join(env.XDG_DATA_HOME ?? "", "provenix", "vulns.db");
  const raw = new Database(db);
  raw.prepare("UPDATE meta SET value = '2020-01-01T00:00:00.000Z' WHERE key = 'updated'").run();
  raw.close();
  const stale = verify(
    policy("stale.yaml", "    maxSeverity: CRITICAL\n    maxDatabaseAgeDays: 7\n"),
    1,
  );
  assert.match(
    stale.reason ?? "",
    /last updated 2020-01-01T00:00:00\.000Z, more than 7 day\(s\) ago/,
  );
});

test("daemon --vulns signs a scan of each build's outputs beside its provenance", async (t) => {
  const env = cliHome();
  assert.equal(provenix(["keygen"], env).code, 0);
  assert.equal(provenix(["vulns", "update", "--from", RECORDS], env).code, 0);
  const d = Daemon.start(t, ["--no-gc-roots", "--poll", "100", "--vulns"], env);
  await d.waitFor((e) => e.event === "started", "start");
  const top = buildFixture("top", `${SALT}-daemon`);
  await d.waitFor((e) => e.event === "attested" && e.path === top, "the top attested");
  const xz = run("nix-store", ["--query", "--requisites", top])
    .trim()
    .split("\n")
    .filter((p) => p.endsWith("-xz-5.6.1"));
  assert.equal(xz.length, 2);
  const statuses: string[] = [];
  for (const path of xz) {
    await d.waitFor((e) => e.event === "attested" && e.path === path, `${path} attested`);
    const dir = tempDir();
    assert.equal(provenix(["export", "--all", "-o", dir, path], env).code, 0);
    const types = readdirSync(dir).map((f) => {
      const b = JSON.parse(readFileSync(join(dir, f), "utf8")) as {
        dsseEnvelope: { payload: string };
      };
      return JSON.parse(Buffer.from(b.dsseEnvelope.payload, "base64").toString()) as {
        predicateType: string;
        predicate: {
          scanner?: { result: { id: string; annotations: Record<string, unknown>[] }[] };
        };
      };
    });
    assert.deepEqual(types.map((s) => s.predicateType).sort(), [
      "https://in-toto.io/attestation/vulns/v0.2",
      "https://slsa.dev/provenance/v1",
    ]);
    const scan = types.find((s) => s.predicateType.includes("vulns"));
    const hit = scan?.predicate.scanner?.result.find((r) => r.id === "GHSA-rxwq-x6h5-x525");
    statuses.push(String(hit?.annotations.find((a) => a.status !== undefined)?.status));
  }
  assert.deepEqual(statuses.sort(), ["affected", "fixed"]);
  await d.stop();
});
