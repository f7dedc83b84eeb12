// Two writers publishing to the same path's index at once: the index is a
// read-modify-write, so publishPath reads it back and merges again when the other
// writer's index replaced its own. The interleaving is made, not hoped for: the
// cache below runs the other writer's whole publish right after this writer's first
// index write, on a real file:// cache.
import assert from "node:assert/strict";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import test from "node:test";
import { publishPath } from "../../src/app/binary-cache.js";
import { indexFile, narinfoFile, parseIndex } from "../../src/cache/index.js";
import { AttestationStore } from "../../src/store/index.js";
import { openBinaryCache, type BinaryCache } from "../../src/system/binary-cache.js";
import { tempDir } from "../helpers/nix.js";

const PATH = "/nix/store/0c6kzph7l0dcbfmjap64f0czdafn3b7x-hello-2.12";

function storeWith(name: string, bundle: string): AttestationStore {
  const store = AttestationStore.open(join(tempDir(), `${name}.db`));
  store.put({
    bundle: Buffer.from(bundle),
    payload: Buffer.from(`payload of ${bundle}`),
    keyid: name,
    predicateType: "https://slsa.dev/provenance/v1",
    subjects: [{ name: PATH, sha256: "0".repeat(64) }],
  });
  return store;
}

test("publish: an index replaced by another writer between write and read-back is merged again, so both writers' bundles are listed", async () => {
  const dir = tempDir("provenix-cache-");
  writeFileSync(join(dir, narinfoFile(PATH)), "StorePath: x\n");
  const url = `file://${dir}`;
  const plain = openBinaryCache(url);
  const a = storeWith("a", '{"bundle":"a"}');
  const b = storeWith("b", '{"bundle":"b"}');
  let interleaved = false;
  const racing: BinaryCache = {
    url,
    get: (p) => plain.get(p),
    async put(p, bytes, type) {
      await plain.put(p, bytes, type);
      if (p === indexFile(PATH) && !interleaved) {
        interleaved = true;
        // The other writer read the index before ours was written: it lists only its own.
        rmSync(join(dir, indexFile(PATH)));
        const rb = await publishPath(plain, b, PATH);
        assert.equal(rb.result, "published");
      }
    },
  };
  const ra = await publishPath(racing, a, PATH);
  assert.ok(interleaved);
  assert.deepEqual(ra, { path: PATH, result: "published", bundles: 1 });
  const index = parseIndex(readFileSync(join(dir, indexFile(PATH))), PATH);
  assert.equal(index.attestations.length, 2, "both writers' bundles are listed");
  a.close();
  b.close();
});
