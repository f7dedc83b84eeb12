// Matching by identifier (purl, CPE, source repository, source file name), vendor
// contradictions, meta.knownVulnerabilities and CycloneDX VEX: the pure rules, on
// advisories in the shapes OSV and CVE JSON 5 (with NVD's cpeApplicability) give them.
import assert from "node:assert/strict";
import test from "node:test";
import {
  applyVex,
  matchPackage,
  packageKeys,
  parseCpe,
  parseCve,
  parseCycloneDxVex,
  parseOpenVex,
  parseOsv,
  purlKey,
  repoKey,
  sourceFileName,
  affectedKeys,
  type Package,
} from "../../src/vulns/index.js";
import { cycloneDxErrors } from "../helpers/schemas.js";

const pkg = (p: Partial<Package> & { name: string; version: string }): Package => ({
  paths: [`/nix/store/00000000000000000000000000000000-${p.name}-${p.version}`],
  patches: [],
  sourceUrls: [],
  ...p,
});

/** A CVE JSON 5.1 record with NVD's cpeApplicability in an ADP container. */
const cveWithCpe = {
  dataType: "CVE_RECORD",
  dataVersion: "5.1",
  cveMetadata: { cveId: "CVE-2099-1000", state: "PUBLISHED", dateUpdated: "2026-01-01T00:00:00Z" },
  containers: {
    cna: {
      providerMetadata: { orgId: "x" },
      affected: [
        { vendor: "n/a", product: "n/a", versions: [{ version: "n/a", status: "affected" }] },
      ],
      descriptions: [{ lang: "en", value: "a heap overflow" }],
    },
    adp: [
      {
        providerMetadata: { orgId: "nvd" },
        cpeApplicability: [
          {
            nodes: [
              {
                operator: "OR",
                cpeMatch: [
                  {
                    vulnerable: true,
                    criteria: "cpe:2.3:a:haxx:curl:*:*:*:*:*:*:*:*",
                    versionStartIncluding: "7.69.0",
                    versionEndExcluding: "8.4.0",
                  },
                  {
                    vulnerable: true,
                    criteria: "cpe:2.3:a:haxx:libcurl:8.4.0:*:*:*:*:*:*:*",
                  },
                  {
                    vulnerable: false,
                    criteria: "cpe:2.3:o:debian:debian_linux:12.0:*:*:*:*:*:*:*",
                  },
                ],
              },
            ],
          },
        ],
      },
    ],
  },
};

test("identifiers: CPE 2.3 fields with escapes, purl and forge-repository keys, names in source archives", () => {
  assert.deepEqual(parseCpe("cpe:2.3:a:haxx:curl:8.3.0:*:*:*:*:*:*:*"), {
    part: "a",
    vendor: "haxx",
    product: "curl",
    version: "8.3.0",
  });
  assert.equal(parseCpe("cpe:2.3:a:gnu:gcc\\:13:*:*:*:*:*:*:*:*")?.product, "gcc:13");
  assert.equal(parseCpe("cpe:/a:haxx:curl:8.3.0"), undefined, "CPE 2.2 URIs are not 2.3 names");
  assert.equal(parseCpe("cpe:2.3:a:haxx"), undefined);
  assert.equal(purlKey("pkg:github/Curl/curl@curl-8_3_0?x=1#sub"), "purl:github/curl/curl");
  assert.equal(purlKey("pkg:deb/debian/curl@7.88.1-10"), "purl:deb/debian/curl");
  assert.equal(purlKey("pkg:nix/xz%2Dutils@5.6.1"), "purl:nix/xz-utils");
  assert.equal(purlKey("not a purl"), undefined);
  assert.equal(
    repoKey("https://github.com/curl/curl/releases/download/curl-8_3_0/curl-8.3.0.tar.xz"),
    "repo:github.com/curl/curl",
  );
  assert.equal(repoKey("git+https://gitlab.com/Foo/Bar.git"), "repo:gitlab.com/foo/bar");
  assert.equal(repoKey("https://curl.se/download/curl-8.3.0.tar.xz"), undefined);
  assert.deepEqual(sourceFileName("https://curl.se/download/curl-8.3.0.tar.xz"), {
    name: "curl",
    version: "8.3.0",
  });
  assert.deepEqual(
    sourceFileName("mirror://kernel/linux/utils/util-linux/v2.39/util-linux-2.39.3.tar.xz"),
    { name: "util-linux", version: "2.39.3" },
  );
  assert.equal(sourceFileName("https://example.org/patches/fix.patch"), undefined);
});

test("NVD cpeApplicability: each vulnerable CPE match is an entry with its bounds; a package is found by its CPE and matched on them", () => {
  const adv = parseCve(cveWithCpe, "cve.json");
  const cpeEntries = adv.affected.filter((a) => a.cpes.length > 0);
  assert.equal(cpeEntries.length, 2, "the vulnerable:false match is not an entry");
  assert.deepEqual(affectedKeys(cpeEntries[0] as (typeof cpeEntries)[0]), [
    "curl",
    "cpe:haxx:curl",
  ]);
  const curl = (version: string) =>
    pkg({ name: "curl", version, cpes: [`cpe:2.3:a:haxx:curl:${version}:*:*:*:*:*:*:*`] });
  assert.ok(packageKeys(curl("8.3.0")).includes("cpe:haxx:curl"));
  const at = (version: string) => matchPackage(curl(version), [adv]).findings;
  assert.equal(at("7.68.0").length, 0, "below versionStartIncluding");
  const [f] = at("7.69.0");
  assert.equal(f?.rule, "CPE");
  assert.match(
    f?.evidence ?? "",
    /cpe:2\.3:a:haxx:curl:\*.* ~ cpe:2\.3:a:haxx:curl:7\.69\.0.*; 7\.69\.0: >= 7\.69\.0, < 8\.4\.0/,
  );
  assert.deepEqual(f?.fixedVersions, ["8.4.0"]);
  assert.equal(at("8.3.0").length, 1);
  assert.equal(at("8.4.0").length, 0, "versionEndExcluding is excluded");
  // A CPE with a concrete version and no bounds means that version only.
  const libcurl = (v: string) =>
    matchPackage(pkg({ name: "libcurl", version: v }), [adv]).findings.length;
  assert.equal(libcurl("8.4.0"), 1);
  assert.equal(libcurl("8.3.0"), 0);
  // versionStartExcluding: the bound itself is not affected.
  const excl = parseCve(
    {
      ...cveWithCpe,
      containers: {
        cna: cveWithCpe.containers.cna,
        adp: [
          {
            cpeApplicability: [
              {
                nodes: [
                  {
                    cpeMatch: [
                      {
                        vulnerable: true,
                        criteria: "cpe:2.3:a:haxx:curl:*:*:*:*:*:*:*:*",
                        versionStartExcluding: "8.0.0",
                        versionEndIncluding: "8.1.0",
                      },
                    ],
                  },
                ],
              },
            ],
          },
        ],
      },
    },
    "cve.json",
  );
  const ex = (v: string) => matchPackage(curl(v), [excl]).findings.length;
  assert.deepEqual([ex("8.0.0"), ex("8.0.1"), ex("8.1.0"), ex("8.1.1")], [0, 1, 1, 0]);
});

test("a same-named package whose CPE vendor contradicts the advisory's is not matched, and the decision says why", () => {
  const adv = parseCve(cveWithCpe, "cve.json");
  // Another project called curl, whose metadata names its own vendor.
  const other = pkg({
    name: "curl",
    version: "8.0.0",
    cpes: ["cpe:2.3:a:someone_else:curl:8.0.0:*:*:*:*:*:*:*"],
  });
  const r = matchPackage(other, [adv]);
  assert.equal(r.findings.length, 0);
  assert.equal(r.decisions[0]?.decision, "vendor-mismatch");
  assert.match(
    r.decisions[0]?.reason ?? "",
    /vendor haxx is not the package's CPE vendor someone_else/,
  );
  // Without metadata the name matches, as it must: nothing says it is another project.
  assert.equal(
    matchPackage(pkg({ name: "curl", version: "8.0.0" }), [adv]).findings[0]?.rule,
    "name and version",
  );
});

test("purl, source repository and source file name rules, with the version each compares", () => {
  const osv = parseOsv(
    {
      id: "OSV-2099-1",
      modified: "2026-01-01T00:00:00Z",
      affected: [
        {
          package: { ecosystem: "GIT", name: "libfoo-upstream", purl: "pkg:github/foo/libfoo" },
          ranges: [
            { type: "GIT", repo: "https://github.com/foo/libfoo", events: [{ introduced: "0" }] },
            { type: "ECOSYSTEM", events: [{ introduced: "0" }, { fixed: "2.0" }] },
          ],
        },
      ],
    },
    "osv.json",
  );
  assert.deepEqual(
    osv.affected[0]?.ranges.map((r) => r.fixed),
    ["2.0"],
    "introduced 0: no lower bound",
  );
  const byPurl = matchPackage(
    pkg({ name: "foo", version: "1.5", purls: ["pkg:github/foo/libfoo@v1.5"] }),
    [osv],
  ).findings[0];
  assert.equal(byPurl?.rule, "purl");
  const byRepo = matchPackage(
    pkg({
      name: "foo",
      version: "1.5",
      sourceUrls: ["https://github.com/foo/libfoo/archive/refs/tags/v1.5.tar.gz"],
    }),
    [osv],
  );
  assert.equal(byRepo.findings[0]?.rule, "source repository");
  assert.match(
    byRepo.findings[0]?.evidence ?? "",
    /developed at https:\/\/github\.com\/foo\/libfoo/,
  );
  assert.match(byRepo.decisions[0]?.reason ?? "", /GIT range/, "the git range is still reported");
  assert.equal(
    matchPackage(
      pkg({
        name: "foo",
        version: "2.0",
        sourceUrls: ["https://github.com/foo/libfoo/archive/v2.0.tar.gz"],
      }),
      [osv],
    ).findings.length,
    0,
    "the fixed version is not affected",
  );
  // Source file name: nixpkgs' util-linux-minimal is built from util-linux-2.39.3.tar.xz.
  const cve = parseCve(
    {
      dataType: "CVE_RECORD",
      cveMetadata: { cveId: "CVE-2099-2000", dateUpdated: "2026-01-01T00:00:00Z" },
      containers: {
        cna: {
          affected: [
            {
              product: "util-linux",
              versions: [
                { version: "2.39", lessThan: "2.40", status: "affected", versionType: "custom" },
              ],
            },
          ],
        },
      },
    },
    "cve.json",
  );
  const minimal = pkg({
    name: "util-linux-minimal",
    version: "2.39.3",
    sourceUrls: [
      "https://www.kernel.org/pub/linux/utils/util-linux/v2.39/util-linux-2.39.3.tar.xz",
    ],
  });
  assert.ok(packageKeys(minimal).includes("util-linux"));
  const f = matchPackage(minimal, [cve]).findings[0];
  assert.equal(f?.rule, "source file name");
  assert.match(
    f?.evidence ?? "",
    /util-linux = util-linux, the name in util-linux-minimal's source .*; 2\.39\.3: >= 2\.39, < 2\.40/,
  );
});

test("meta.knownVulnerabilities entries are findings, once: an entry whose CVE the database reports adds nothing", () => {
  const adv = parseCve(cveWithCpe, "cve.json");
  const p = pkg({
    name: "curl",
    version: "8.3.0",
    knownVulnerabilities: [
      "CVE-2099-1000",
      "CVE-2099-3000 and CVE-2099-3001: heap overflow",
      "unmaintained upstream",
    ],
  });
  const r = matchPackage(p, [adv]).findings;
  assert.deepEqual(
    r.map((f) => [f.advisory, f.rule, f.aliases]),
    [
      ["CVE-2099-1000", "name and version", []],
      ["CVE-2099-3000", "meta.knownVulnerabilities", ["CVE-2099-3001"]],
      ["nixpkgs:knownVulnerabilities", "meta.knownVulnerabilities", []],
    ],
  );
  assert.equal(r[2]?.rating, "UNKNOWN");
  assert.match(r[2]?.evidence ?? "", /says: unmaintained upstream/);
});

test("CycloneDX VEX triages findings by bom-ref, BOM-Link or purl; OpenVEX and CycloneDX statements past an age limit are expired", async () => {
  const adv = parseCve(cveWithCpe, "cve.json");
  const findings = matchPackage(pkg({ name: "curl", version: "8.3.0" }), [adv]).findings;
  const vex = {
    bomFormat: "CycloneDX",
    specVersion: "1.6",
    version: 1,
    serialNumber: "urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79",
    components: [
      {
        type: "library",
        "bom-ref": "curl-8.3.0",
        name: "curl",
        version: "8.3.0",
        purl: "pkg:nix/curl@8.3.0",
      },
    ],
    vulnerabilities: [
      {
        id: "CVE-2099-1000",
        analysis: {
          state: "not_affected",
          justification: "code_not_reachable",
          detail: "built without SOCKS5",
          lastUpdated: "2026-11-01T00:00:00Z",
        },
        affects: [{ ref: "urn:cdx:3e671687-395b-41f5-a30f-a58921a69b79/1#curl-8.3.0" }],
      },
      {
        id: "CVE-2099-9999",
        analysis: { state: "requires_environment_is_not_a_state" },
        affects: [{ ref: "pkg:nix/curl@8.3.0" }],
      },
    ],
  };
  // The document is CycloneDX as its own validator reads it, except the bad state.
  assert.ok(
    await cycloneDxErrors(JSON.stringify(vex), "1.6"),
    "an unknown state is invalid CycloneDX",
  );
  assert.throws(
    () => parseCycloneDxVex(vex, "v.cdx.json"),
    /v\.cdx\.json: vulnerabilities\[1\]: analysis\.state must be one of/,
  );
  const good = { ...vex, vulnerabilities: [vex.vulnerabilities[0]] };
  assert.equal(await cycloneDxErrors(JSON.stringify(good), "1.6"), null);
  const statements = parseCycloneDxVex(good, "v.cdx.json");
  assert.deepEqual(statements[0]?.products, ["pkg:nix/curl@8.3.0", "curl"]);
  assert.equal(statements[0]?.justification, "vulnerable_code_not_in_execute_path");
  const t = applyVex(findings, statements);
  assert.equal(t.findings[0]?.status, "not_affected");
  assert.match(
    t.findings[0]?.reason ?? "",
    /VEX v\.cdx\.json#0: vulnerable_code_not_in_execute_path/,
  );
  // A CycloneDX justification OpenVEX has no word for becomes the impact statement.
  const cfg = parseCycloneDxVex(
    {
      ...good,
      vulnerabilities: [
        {
          id: "CVE-2099-1000",
          analysis: {
            state: "not_affected",
            justification: "requires_configuration",
            detail: "SOCKS5 proxy off",
          },
          affects: [{ ref: "curl-8.3.0" }],
        },
      ],
    },
    "c.json",
  );
  assert.equal(cfg[0]?.impactStatement, "requires_configuration: SOCKS5 proxy off");
  assert.equal(cfg[0]?.justification, undefined);

  const now = new Date("2026-12-01T00:00:00Z");
  assert.equal(applyVex(findings, statements, { maxAgeDays: 60, now }).expired.length, 0);
  const old = applyVex(findings, statements, { maxAgeDays: 20, now });
  assert.equal(old.expired.length, 1);
  assert.equal(old.findings[0]?.status, "affected", "an expired statement is not applied");
  assert.equal(old.unmatched.length, 0, "expired, not unmatched");
  const ov = parseOpenVex(
    {
      "@context": "https://openvex.dev/ns/v0.2.0",
      timestamp: "2026-06-01T00:00:00Z",
      statements: [
        {
          vulnerability: { name: "CVE-2099-1000" },
          products: [{ "@id": "x", identifiers: { purl: "pkg:nix/curl@8.3.0" } }],
          status: "fixed",
        },
      ],
    },
    "o.json",
  );
  assert.equal(
    ov[0]?.timestamp,
    "2026-06-01T00:00:00Z",
    "the document's time when the statement has none",
  );
  assert.equal(
    applyVex(findings, ov).findings[0]?.status,
    "fixed",
    "identifiers.purl names the product",
  );
  assert.equal(applyVex(findings, ov, { maxAgeDays: 90, now }).expired.length, 1);
});
