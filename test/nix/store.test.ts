import assert from "node:assert/strict";
import { test } from "node:test";
import { NixCliStore } from "../../src/system/nix-cli.js";
import { NixDbStore } from "../../src/system/nix-db.js";
import { build, drvOutputs, instantiate, run, useTestNix } from "../helpers/nix.js";

useTestNix();

test("the nix CLI and Nix database adapters answer the same", async () => {
  const outs = [...build("app"), ...build("multi")];
  const drvs = [instantiate("app"), instantiate("multi")];
  const cli = new NixCliStore();
  const db = new NixDbStore();
  try {
    const paths = [...outs, ...drvs, "/nix/store/00000000000000000000000000000000-not-there"];
    const [a, b] = await Promise.all([cli.pathInfos(paths), db.pathInfos(paths)]);
    assert.equal(a.size, paths.length - 1);
    assert.deepEqual([...b.keys()].sort(), [...a.keys()].sort());
    for (const [p, info] of a) {
      const other = b.get(p);
      assert.deepEqual(
        { ...other, references: [...(other?.references ?? [])].sort() },
        { ...info, references: [...info.references].sort() },
        p,
      );
    }
    const app = a.get(outs[0] as string);
    assert.equal(app?.ultimate, true);
    assert.equal(app?.deriver, drvs[0]);
    assert.ok((app?.references.length ?? 0) >= 1, "app references libB");

    const closureCli = await cli.closure(drvs);
    assert.deepEqual(await db.closure(drvs), closureCli);
    assert.deepEqual(
      closureCli,
      run("nix-store", ["-qR", ...drvs])
        .trim()
        .split("\n")
        .sort(),
    );

    for (const d of drvs) {
      const expected = drvOutputs(d);
      assert.deepEqual(Object.fromEntries(await cli.derivationOutputs(d)), expected);
      assert.deepEqual(Object.fromEntries(await db.derivationOutputs(d)), expected);
    }
    // Many at once (one query for the database); a derivation the database does
    // not know has no realised outputs there.
    const expectedMany = Object.fromEntries(drvs.map((d) => [d, drvOutputs(d)]));
    const asObject = (m: Map<string, Map<string, string>>) =>
      Object.fromEntries([...m].map(([d, o]) => [d, Object.fromEntries(o)]));
    assert.deepEqual(asObject(await cli.derivationOutputsOf(drvs)), expectedMany);
    const unknown = "/nix/store/00000000000000000000000000000000-unknown.drv";
    assert.deepEqual(asObject(await db.derivationOutputsOf([...drvs, unknown])), {
      ...expectedMany,
      [unknown]: {},
    });
  } finally {
    db.close();
  }
});

test("reading a missing Nix database is a clear NIX_DB_UNREADABLE error", () => {
  assert.throws(() => new NixDbStore("/nonexistent/db.sqlite"), { code: "NIX_DB_UNREADABLE" });
});
