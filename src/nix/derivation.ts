import { NixError } from "./error.js";

// The `.drv` ATerm format, as written by libstore/derivations.cc (unparse) and read
// by parseDerivation there:
//   Derive([outputs],[inputDrvs],[inputSrcs],"system","builder",[args],[env])
// Lists keep the file's order, so unparse(parse(x)) reproduces x byte for byte.

/** How a content-addressed output is hashed (`r:` = nar, `text:` = text, none = flat). */
export type ContentAddressMethod = "flat" | "nar" | "text";

/** A derivation output: the closed sum of libstore's DerivationOutput. */
export type DerivationOutput =
  | { readonly kind: "inputAddressed"; readonly path: string }
  | {
      readonly kind: "caFixed";
      readonly path: string;
      readonly method: ContentAddressMethod;
      readonly hashAlgo: string;
      /** The declared hash, as written in the .drv (base16). */
      readonly hash: string;
    }
  | {
      readonly kind: "caFloating";
      readonly method: ContentAddressMethod;
      readonly hashAlgo: string;
    }
  | { readonly kind: "deferred" }
  | { readonly kind: "impure"; readonly method: ContentAddressMethod; readonly hashAlgo: string };

export interface Derivation {
  /** Output name -> output, in file order (sorted by name in files Nix writes). */
  readonly outputs: ReadonlyArray<readonly [string, DerivationOutput]>;
  /** Input derivation path -> the output names used from it. */
  readonly inputDrvs: ReadonlyArray<readonly [string, readonly string[]]>;
  readonly inputSrcs: readonly string[];
  readonly system: string;
  readonly builder: string;
  readonly args: readonly string[];
  readonly env: ReadonlyArray<readonly [string, string]>;
  /**
   * How the file's bytes map to these strings (parseDerivationBytes): "utf8" when they
   * are valid UTF-8, else "latin1", one character U+0000-U+00FF per byte. Either way
   * unparseDerivationBytes gives the same bytes back. Absent: parsed from a string.
   */
  readonly encoding?: DerivationEncoding;
}

export type DerivationEncoding = "utf8" | "latin1";

// --- parsing ---------------------------------------------------------------

class Reader {
  pos = 0;
  /** Where the next backslash at or after `pos` is (-1: none left); found once, not per string. */
  private backslashAt = -2;
  constructor(
    readonly text: string,
    readonly what: string,
  ) {}

  fail(expected: string): never {
    const near = JSON.stringify(this.text.slice(this.pos, this.pos + 20));
    const where = this.pos >= this.text.length ? "end of input" : `offset ${this.pos} (${near})`;
    throw new NixError("MALFORMED_DERIVATION", `${this.what}: expected ${expected} at ${where}`);
  }

  expect(token: string): void {
    if (!this.text.startsWith(token, this.pos)) this.fail(`'${token}'`);
    this.pos += token.length;
  }

  /** Consume `token` if it is next. */
  accept(token: string): boolean {
    if (this.text.startsWith(token, this.pos)) {
      this.pos += token.length;
      return true;
    }
    return false;
  }

  string(): string {
    this.expect('"');
    let out = "";
    let start = this.pos;
    for (;;) {
      const quote = this.text.indexOf('"', this.pos);
      if (this.backslashAt !== -1 && this.backslashAt < this.pos)
        this.backslashAt = this.text.indexOf("\\", this.pos);
      const backslash = this.backslashAt;
      if (quote === -1) this.fail("closing '\"'");
      if (backslash === -1 || quote < backslash) {
        out += this.text.slice(start, quote);
        this.pos = quote + 1;
        return out;
      }
      out += this.text.slice(start, backslash);
      const escaped = this.text[backslash + 1];
      if (escaped === undefined) {
        this.pos = backslash + 1;
        this.fail("an escaped character");
      }
      // libstore parseString: \n \r \t are control characters, anything else is itself.
      out += escaped === "n" ? "\n" : escaped === "r" ? "\r" : escaped === "t" ? "\t" : escaped;
      this.pos = backslash + 2;
      start = this.pos;
    }
  }

  list<T>(item: () => T): T[] {
    this.expect("[");
    const out: T[] = [];
    if (this.accept("]")) return out;
    do out.push(item());
    while (this.accept(","));
    this.expect("]");
    return out;
  }

  path(): string {
    const p = this.string();
    if (!p.startsWith("/")) this.fail(`an absolute path, got '${p}'`);
    return p;
  }
}

export function parseDerivation(text: string, what = "derivation"): Derivation {
  const r = new Reader(text, what);
  if (r.text.startsWith("DrvWithVersion(", 0)) {
    throw new NixError(
      "UNSUPPORTED_DERIVATION",
      `${what}: versioned derivations (dynamic derivations) are not supported`,
    );
  }
  r.expect("Derive(");
  const outputs = r.list(() => {
    r.expect("(");
    const name = r.string();
    r.expect(",");
    const path = r.string();
    r.expect(",");
    const hashAlgo = r.string();
    r.expect(",");
    const hash = r.string();
    r.expect(")");
    return [name, toOutput(r, name, path, hashAlgo, hash)] as const;
  });
  r.expect(",");
  const inputDrvs = r.list(() => {
    r.expect("(");
    const drv = r.path();
    r.expect(",");
    const names = r.list(() => r.string());
    r.expect(")");
    return [drv, names] as const;
  });
  r.expect(",");
  const inputSrcs = r.list(() => r.path());
  r.expect(",");
  const system = r.string();
  r.expect(",");
  const builder = r.string();
  r.expect(",");
  const args = r.list(() => r.string());
  r.expect(",");
  const env = r.list(() => {
    r.expect("(");
    const key = r.string();
    r.expect(",");
    const value = r.string();
    r.expect(")");
    return [key, value] as const;
  });
  r.expect(")");
  if (r.pos !== text.length) r.fail("end of input");
  // Nix keeps the last of a repeated key, tvix refuses it: ambiguous input must not
  // become signed evidence.
  const keys = new Set<string>();
  for (const [key] of env) {
    if (keys.has(key)) {
      throw new NixError(
        "MALFORMED_DERIVATION",
        `${what}: the environment variable '${key}' is given twice`,
      );
    }
    keys.add(key);
  }
  return { outputs, inputDrvs, inputSrcs, system, builder, args, env };
}

function splitHashAlgo(hashAlgo: string): { method: ContentAddressMethod; hashAlgo: string } {
  if (hashAlgo.startsWith("r:")) return { method: "nar", hashAlgo: hashAlgo.slice(2) };
  if (hashAlgo.startsWith("text:")) return { method: "text", hashAlgo: hashAlgo.slice(5) };
  return { method: "flat", hashAlgo };
}

const HASH_ALGOS = new Set(["md5", "sha1", "sha256", "sha512"]);

function toOutput(
  r: Reader,
  name: string,
  path: string,
  hashAlgo: string,
  hash: string,
): DerivationOutput {
  if (path !== "" && !path.startsWith("/"))
    r.fail(`an absolute path for output '${name}', got '${path}'`);
  if (hashAlgo === "") {
    if (hash !== "") r.fail(`no hash for output '${name}' without a hash algorithm`);
    return path === "" ? { kind: "deferred" } : { kind: "inputAddressed", path };
  }
  const ca = splitHashAlgo(hashAlgo);
  if (!HASH_ALGOS.has(ca.hashAlgo)) r.fail(`a known hash algorithm for output '${name}'`);
  if (hash === "impure") return { kind: "impure", ...ca };
  if (hash === "") {
    if (path !== "") r.fail(`an empty path for floating output '${name}'`);
    return { kind: "caFloating", ...ca };
  }
  if (path === "") r.fail(`a path for fixed output '${name}'`);
  return { kind: "caFixed", path, ...ca, hash };
}

// --- unparsing -------------------------------------------------------------

/** libstore printString: escape `"`, `\`, newline, carriage return and tab. */
function printString(s: string): string {
  return '"' + s.replace(/["\\\n\r\t]/g, escapeChar) + '"';
}

function escapeChar(c: string): string {
  switch (c) {
    case "\n":
      return "\\n";
    case "\r":
      return "\\r";
    case "\t":
      return "\\t";
    default:
      return "\\" + c;
  }
}

function printList(items: readonly string[]): string {
  return "[" + items.join(",") + "]";
}

function hashAlgoField(method: ContentAddressMethod, hashAlgo: string): string {
  switch (method) {
    case "nar":
      return "r:" + hashAlgo;
    case "text":
      return "text:" + hashAlgo;
    case "flat":
      return hashAlgo;
  }
}

/** The (path, hashAlgo, hash) triple an output is written as. */
export function outputFields(output: DerivationOutput): [string, string, string] {
  switch (output.kind) {
    case "inputAddressed":
      return [output.path, "", ""];
    case "caFixed":
      return [output.path, hashAlgoField(output.method, output.hashAlgo), output.hash];
    case "caFloating":
      return ["", hashAlgoField(output.method, output.hashAlgo), ""];
    case "deferred":
      return ["", "", ""];
    case "impure":
      return ["", hashAlgoField(output.method, output.hashAlgo), "impure"];
  }
}

const UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Parse a .drv file's bytes. Nix strings are bytes: a .drv may hold latin1 or cp1252
 * as well as UTF-8. Valid UTF-8 is read as text; anything else byte for byte as
 * U+0000-U+00FF, so that nothing is replaced and the bytes round-trip exactly.
 */
export function parseDerivationBytes(bytes: Uint8Array, what = "derivation"): Derivation {
  let text: string;
  let encoding: DerivationEncoding = "utf8";
  try {
    text = UTF8.decode(bytes);
  } catch {
    text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1");
    encoding = "latin1";
  }
  return { ...parseDerivation(text, what), encoding };
}

/** The exact bytes of a derivation parsed by parseDerivationBytes (or from a string: UTF-8). */
export function unparseDerivationBytes(drv: Derivation): Buffer {
  return Buffer.from(unparseDerivation(drv), drv.encoding === "latin1" ? "latin1" : "utf8");
}

export function unparseDerivation(drv: Derivation): string {
  return (
    "Derive(" +
    printList(
      drv.outputs.map(
        ([name, o]) => "(" + [name, ...outputFields(o)].map(printString).join(",") + ")",
      ),
    ) +
    "," +
    printList(
      drv.inputDrvs.map(
        ([p, names]) => "(" + printString(p) + "," + printList(names.map(printString)) + ")",
      ),
    ) +
    "," +
    printList(drv.inputSrcs.map(printString)) +
    "," +
    printString(drv.system) +
    "," +
    printString(drv.builder) +
    "," +
    printList(drv.args.map(printString)) +
    "," +
    printList(drv.env.map(([k, v]) => "(" + printString(k) + "," + printString(v) + ")")) +
    ")"
  );
}

// --- views -----------------------------------------------------------------

/** The output's store path, when it is known before the build. */
export function outputPath(output: DerivationOutput): string | undefined {
  return output.kind === "inputAddressed" || output.kind === "caFixed" ? output.path : undefined;
}

export function envValue(drv: Derivation, key: string): string | undefined {
  for (const [k, v] of drv.env) if (k === key) return v;
  return undefined;
}

/** The parsed `__json` of a derivation built with structured attrs, if any. */
export function structuredAttrs(drv: Derivation): Record<string, unknown> | undefined {
  const json = envValue(drv, "__json");
  if (json === undefined) return undefined;
  try {
    const value: unknown = JSON.parse(json);
    if (value === null || typeof value !== "object" || Array.isArray(value)) throw new Error();
    return value as Record<string, unknown>;
  } catch (cause) {
    throw new NixError("MALFORMED_DERIVATION", "structured attrs (__json) are not a JSON object", {
      cause,
    });
  }
}

/** An attribute from the env or, with structured attrs, from `__json`. */
export function attribute(drv: Derivation, key: string): unknown {
  const attrs = structuredAttrs(drv);
  return attrs ? attrs[key] : envValue(drv, key);
}

export function isFixedOutput(drv: Derivation): boolean {
  return drv.outputs.length === 1 && drv.outputs[0]?.[1].kind === "caFixed";
}

/** Where a fixed-output derivation fetches from: `url`, `urls`, or `urls` as a list. */
export function fetchUrls(drv: Derivation): string[] {
  const out: string[] = [];
  for (const key of ["url", "urls"]) {
    const value = attribute(drv, key);
    if (typeof value === "string") out.push(...value.split(" ").filter((u) => u !== ""));
    else if (Array.isArray(value)) out.push(...value.filter((u) => typeof u === "string"));
  }
  return out;
}

/** The same shape as `nix show-derivation` prints for one derivation (Nix 2.8). */
export function derivationToJson(drv: Derivation): Record<string, unknown> {
  const outputs: Record<string, Record<string, unknown>> = {};
  for (const [name, o] of drv.outputs) {
    switch (o.kind) {
      case "inputAddressed":
        outputs[name] = { path: o.path };
        break;
      case "caFixed":
        outputs[name] = {
          path: o.path,
          hashAlgo: hashAlgoField(o.method, o.hashAlgo),
          hash: o.hash,
        };
        break;
      case "caFloating":
        outputs[name] = { hashAlgo: hashAlgoField(o.method, o.hashAlgo) };
        break;
      case "deferred":
        outputs[name] = {};
        break;
      case "impure":
        outputs[name] = { hashAlgo: hashAlgoField(o.method, o.hashAlgo), impure: true };
        break;
    }
  }
  return {
    outputs,
    inputSrcs: [...drv.inputSrcs],
    inputDrvs: Object.fromEntries(drv.inputDrvs.map(([p, n]) => [p, [...n]])),
    system: drv.system,
    builder: drv.builder,
    args: [...drv.args],
    env: Object.fromEntries(drv.env),
  };
}
