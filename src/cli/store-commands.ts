import { writeFileSync } from "node:fs";
import { makeDirs } from "../system/make-dirs.js";
import { dirname, join } from "node:path";
import { parseBundle } from "../sign/index.js";
import { classifyTarget } from "../system/targets.js";
import { needTargets, printJson } from "./args.js";
import type { StoredAttestation } from "../store/index.js";
import type { Context } from "./context.js";
import type { Command } from "./command.js";
import { CliError, EXIT } from "./errors.js";

function storedFor(ctx: Context, arg: string): { path: string; attestations: StoredAttestation[] } {
  const t = classifyTarget(arg, ctx.nix.storeDir);
  switch (t.kind) {
    case "output":
      return { path: t.path, attestations: ctx.store.find({ subjectName: t.path }) };
    case "derivation":
      return { path: t.drvPath, attestations: ctx.store.find({ derivation: t.drvPath }) };
    case "bundle":
    case "installable":
      throw new CliError(
        "INPUT",
        `'${arg}' is not a store path; show and export take ./result, a store path or a .drv`,
      );
  }
}

/** The statement inside a stored bundle, decoded for display: NOT verified. */
function decodeStatement(a: StoredAttestation): unknown {
  try {
    return JSON.parse(parseBundle(a.bundle).envelope.payload.toString("utf8"));
  } catch {
    return null;
  }
}

export const showCommand: Command = {
  usage: "Usage: provenix show [options] <./result | store path | .drv>",
  help: `Lists what the attestation store holds for the target: id, predicate type,
builder, signing key id, time stored, subjects. The statements are decoded for
reading, not verified: use 'provenix verify' for that.

Options:
  --statement   also print each statement (decoded, unverified)
  --json        print everything as JSON, statements included`,
  options: { statement: { type: "boolean" } },
  run(ctx, inv) {
    const [arg] = needTargets(inv, "target to show");
    const { path, attestations } = storedFor(ctx, arg as string);
    if (inv.json) {
      printJson(inv, {
        path,
        attestations: attestations.map((a) => ({
          id: a.id,
          predicateType: a.predicateType,
          builderId: a.builderId,
          keyid: a.keyid,
          derivation: a.derivation,
          createdAt: a.createdAt.toISOString(),
          bundleSha256: a.bundleSha256,
          subjects: a.subjects,
          statement: decodeStatement(a),
          verified: false,
        })),
      });
      return EXIT.OK;
    }
    if (attestations.length === 0) inv.io.out(`no attestations for ${path} in ${ctx.store.path}\n`);
    for (const a of attestations) {
      inv.io.out(`#${a.id} ${a.predicateType}\n`);
      inv.io.out(
        `  builder   ${a.builderId ?? "-"}\n  key       ${a.keyid}\n  stored    ${a.createdAt.toISOString()}\n`,
      );
      if (a.derivation) inv.io.out(`  drv       ${a.derivation}\n`);
      for (const s of a.subjects) inv.io.out(`  subject   ${s.name} sha256:${s.sha256 ?? "-"}\n`);
      if (inv.values.statement) inv.io.out(JSON.stringify(decodeStatement(a), null, 2) + "\n");
    }
    return EXIT.OK;
  },
};

export const exportCommand: Command = {
  usage: "Usage: provenix export [options] <./result | store path | .drv>",
  help: `Writes the exact stored bytes, never re-serialised.

Formats:
  sigstore-bundle   the newest attestation's Sigstore bundle (.sigstore.json);
                    with --all and -o DIR, every one as DIR/<id>.sigstore.json
  intoto-jsonl      every attestation's DSSE envelope, one per line
                    (in-toto bundle, .intoto.jsonl)

Options:
  --format FORMAT   sigstore-bundle (default) or intoto-jsonl
  -o, --out PATH    write to PATH instead of stdout
  --all             every attestation (sigstore-bundle needs -o DIR)
  --predicate-type URI   only attestations of this predicate type`,
  options: {
    format: { type: "string" },
    out: { type: "string", short: "o" },
    all: { type: "boolean" },
    "predicate-type": { type: "string" },
  },
  run(ctx, inv) {
    const [arg] = needTargets(inv, "target to export");
    const format = (inv.values.format as string | undefined) ?? "sigstore-bundle";
    if (format !== "sigstore-bundle" && format !== "intoto-jsonl") {
      throw new CliError(
        "USAGE",
        `unknown format '${format}': use sigstore-bundle or intoto-jsonl`,
      );
    }
    const { path, attestations: all } = storedFor(ctx, arg as string);
    const pt = inv.values["predicate-type"];
    const attestations = typeof pt === "string" ? all.filter((a) => a.predicateType === pt) : all;
    if (attestations.length === 0)
      throw new CliError("INPUT", `no attestations for ${path} in ${ctx.store.path}`);
    const out = typeof inv.values.out === "string" ? inv.values.out : undefined;
    const written: string[] = [];
    if (format === "intoto-jsonl") {
      const lines = attestations.map((a) => {
        const b = JSON.parse(a.bundle.toString("utf8")) as { dsseEnvelope: unknown };
        return JSON.stringify(b.dsseEnvelope);
      });
      const text = lines.join("\n") + "\n";
      if (out) {
        writeFileSync(out, text);
        written.push(out);
      } else inv.io.out(text);
    } else if (inv.values.all) {
      if (!out) throw new CliError("USAGE", "--all with sigstore-bundle needs -o DIR");
      makeDirs(out);
      for (const a of attestations) {
        const file = join(out, `${a.id}.sigstore.json`);
        writeFileSync(file, a.bundle);
        written.push(file);
      }
    } else {
      const newest = attestations[attestations.length - 1] as StoredAttestation;
      if (out) {
        makeDirs(dirname(out));
        writeFileSync(out, newest.bundle);
        written.push(out);
      } else inv.io.out(newest.bundle.toString("utf8") + "\n");
    }
    if (out) {
      if (inv.json) printJson(inv, { format, written });
      else inv.io.err(`wrote ${written.join(", ")}\n`);
    }
    return EXIT.OK;
  },
};
