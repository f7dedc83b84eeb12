import assert from "node:assert/strict";
import { test } from "node:test";
import { collect, writeJson } from "../../src/sbom/index.js";

// writeJson must give exactly JSON.stringify(doc, null, 2) + "\n" (the bytes the
// SBOM writers promise), whatever the items and however many there are.

function item(i: number): unknown {
  switch (i % 6) {
    case 0:
      return { name: `pkg${i}`, nested: { list: [1, "two", null, { deep: [] }], empty: {} } };
    case 1:
      return `a string with "quotes", a\nnewline, a tab\t, unicode é ✓ and \u0000`;
    case 2:
      return { skipped: undefined, kept: i, arr: [[], [[]], {}] };
    case 3:
      return [i, -0.5, 1e21, true, false];
    case 4:
      return null;
    default:
      return { "key with spaces": "\\backslash", "": "" };
  }
}

const items = (n: number) => Array.from({ length: n }, (_, i) => item(i));

test("writeJson writes the bytes of JSON.stringify(doc, null, 2), for any number of items", async () => {
  for (const n of [0, 1, 2, 63, 64, 65, 128, 129, 1000]) {
    const doc = {
      first: "before",
      components: items(n),
      middle: { a: [1, 2], b: "x" },
      dependencies: items(n + 1).reverse(),
      last: [],
    };
    const expected = JSON.stringify(doc, null, 2) + "\n";
    const got = await collect((sink) =>
      writeJson(doc, { components: items(n), dependencies: items(n + 1).reverse() }, sink),
    );
    assert.equal(got, expected, `${n} items`);
  }
});

test("writeJson takes items lazily and hands them on in pieces, never the whole document", () => {
  let produced = 0;
  function* many() {
    for (let i = 0; i < 5000; i++) {
      produced++;
      yield { i, text: "x".repeat(100) };
    }
  }
  const chunks: string[] = [];
  let producedAtFirstItems = -1;
  writeJson({ head: 1, items: [] }, { items: many() }, (c) => {
    if (producedAtFirstItems === -1 && c.includes('"i": 0')) producedAtFirstItems = produced;
    chunks.push(c);
  });
  assert.ok(producedAtFirstItems > 0 && producedAtFirstItems < 5000, "written before the end");
  const whole = chunks.join("");
  assert.ok(Math.max(...chunks.map((c) => c.length)) < whole.length / 10);
  assert.deepEqual(JSON.parse(whole), { head: 1, items: [...many()].slice(0, 5000) });
});
