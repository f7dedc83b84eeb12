// Writing a large JSON document a piece at a time, with the same bytes that
// JSON.stringify(doc, null, 2) would give, so that no whole document (nor its
// whole model) need be held in memory. The document's big top-level arrays are
// given as iterables; everything else is an ordinary value.

/** Receives the document's text, in order, in pieces of up to a few hundred kB. */
export type Sink = (chunk: string) => void;

const MARK = "\u0000provenix-stream-";
const BATCH = 64;

/**
 * Write `doc` to `sink` as `JSON.stringify(doc, null, 2) + "\n"` would, where each
 * top-level key in `arrays` (whose value in `doc` is ignored) is the array of its
 * iterable's items. Items are produced lazily and stringified a batch at a time.
 */
export function writeJson(
  doc: Record<string, unknown>,
  arrays: Record<string, Iterable<unknown>>,
  sink: Sink,
): void {
  const keys = Object.keys(arrays);
  const skeleton: Record<string, unknown> = { ...doc };
  for (const [i, k] of keys.entries()) skeleton[k] = [MARK + i];
  let text = JSON.stringify(skeleton, null, 2);
  for (const [i, k] of keys.entries()) {
    const at = text.indexOf(JSON.stringify(MARK + i));
    const open = text.lastIndexOf("[", at);
    const close = text.indexOf("]", at);
    // A batch as the one top-level array of an object is indented as the
    // document's own top-level arrays are: the text between its brackets is
    // exactly theirs.
    const prefix = '{\n  "a": [\n'.length;
    const suffix = "\n  ]\n}".length;
    let written = false;
    let batch: unknown[] = [];
    const write = () => {
      const json = JSON.stringify({ a: batch }, null, 2);
      sink((written ? ",\n" : "\n") + json.slice(prefix, json.length - suffix));
      written = true;
      batch = [];
    };
    sink(text.slice(0, open + 1));
    for (const item of arrays[k] as Iterable<unknown>) {
      batch.push(item);
      if (batch.length === BATCH) write();
    }
    if (batch.length > 0) write();
    sink(written ? "\n  ]" : "]");
    text = text.slice(close + 1);
  }
  sink(text + "\n");
}

/** The whole text a writer produces, for callers that need it as one string. */
export async function collect(write: (sink: Sink) => unknown): Promise<string> {
  const parts: string[] = [];
  await write((c) => parts.push(c));
  return parts.join("");
}
