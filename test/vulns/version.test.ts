// Version orderings, checked against Nix itself (builtins.compareVersions) and the
// CVSS v3.1 specification's own examples.
import assert from "node:assert/strict";
import test from "node:test";
import { cvssBaseScore, ratingOf } from "../../src/vulns/advisory.js";
import { compareNixVersions, compareSemver, isUnstableVersion } from "../../src/vulns/version.js";
import { run, useTestNix } from "../helpers/nix.js";

useTestNix();

test("compareNixVersions agrees with builtins.compareVersions on hand-picked and generated pairs", () => {
  const picked: [string, string][] = [
    ["1.0", "1.0.0"],
    ["2.3a", "2.3.1"],
    ["1.0pre1", "1.0"],
    ["1.0-rc1", "1.0"],
    ["5.6.0", "5.6.1"],
    ["1.2.3", "1.2.10"],
    ["unstable-2024-01-01", "1.0"],
    ["0-unstable-2024-01-01", "0.1"],
    ["", "1"],
    ["a", "b"],
    ["1.0.0.0", "1.0"],
    ["2.12", "2.9"],
    ["3.0.0-alpha", "3.0.0"],
    ["1_2", "1.2"],
    ["8.4.0", "8.4.0"],
    ["1.1.1w", "1.1.1v"],
    ["3.0.7", "3.0.10"],
    ["2.38", "2.38-44"],
    ["20240101", "2.0"],
    ["1.0pre", "1.0pre2"],
  ];
  const parts = ["0", "1", "2", "10", "pre", "a", "rc", "beta", "99"];
  const seps = [".", "-", ""];
  let seed = 7;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const gen = () => {
    let s = "";
    for (let k = 0, n = 1 + rnd(4); k < n; k++)
      s += (k > 0 ? (seps[rnd(3)] ?? "") : "") + (parts[rnd(parts.length)] ?? "");
    return s;
  };
  const pairs = [...picked, ...Array.from({ length: 300 }, (): [string, string] => [gen(), gen()])];
  const expr = `map (p: builtins.compareVersions (builtins.elemAt p 0) (builtins.elemAt p 1)) (builtins.fromJSON ''${JSON.stringify(pairs)}'')`;
  const nix = JSON.parse(
    run("nix-instantiate", ["--eval", "--strict", "--json", "--expr", expr]),
  ) as number[];
  assert.equal(nix.length, pairs.length);
  const ours = pairs.map(([a, b]) => compareNixVersions(a, b));
  const wrong = pairs
    .filter((_, i) => ours[i] !== nix[i])
    .map((p, i) => `${JSON.stringify(p)}: nix ${nix[i]}, ours ${ours[i]}`);
  assert.deepEqual(wrong, []);
});

test("SemVer precedence follows semver.org's examples; non-SemVer is not compared", () => {
  const order = [
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
    "2.0.0",
    "2.1.0",
    "2.1.1",
  ];
  for (let i = 0; i + 1 < order.length; i++) {
    assert.equal(
      compareSemver(order[i] ?? "", order[i + 1] ?? ""),
      -1,
      `${order[i]} < ${order[i + 1]}`,
    );
    assert.equal(compareSemver(order[i + 1] ?? "", order[i] ?? ""), 1);
  }
  assert.equal(compareSemver("1.0.0+build.1", "1.0.0"), 0);
  assert.equal(compareSemver("1.0", "1.0.0"), undefined);
  assert.equal(compareSemver("v1.2.3", "1.2.3"), 0);
});

test("unstable versions are recognised in both nixpkgs conventions", () => {
  assert.equal(isUnstableVersion("foo", "0-unstable-2024-05-01"), true);
  assert.equal(isUnstableVersion("foo-unstable", "2024-05-01"), true);
  assert.equal(isUnstableVersion("foo", "unstable-2024-05-01"), true);
  assert.equal(isUnstableVersion("unstableish", "1.0"), false);
});

test("CVSS v3 base scores from vectors match the scores the records state", () => {
  for (const [vector, score] of [
    ["CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10],
    ["CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8],
    ["CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H", 8.1],
    ["CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.8],
    ["CVSS:3.0/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1],
    ["CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:N/A:H", 5.9],
    ["CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0],
  ] as const) {
    assert.equal(cvssBaseScore(vector), score, vector);
  }
  assert.equal(cvssBaseScore("CVSS:4.0/AV:N"), undefined);
  assert.equal(ratingOf(9.8), "CRITICAL");
  assert.equal(ratingOf(5.9), "MEDIUM");
});
