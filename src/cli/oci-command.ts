import { spawn } from "node:child_process";
import { createWriteStream, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { findBundles, pushAndAttest, type PushEvent } from "../app/push.js";
import { SLSA_PROVENANCE_V1 } from "../attest/index.js";
import { formatReference, OciError, parseReference, type ImageReference } from "../oci/index.js";
import { openImage, type ImageSource } from "../system/image-source.js";
import { RegistryClient, type Credentials } from "../system/registry.js";
import { classifyTarget } from "../system/targets.js";
import { FOREIGN_STATEMENT_TYPES, verifyAttestation } from "../verify/index.js";
import { VERSION } from "../version.js";
import { printJson, strings, trustedKeysFrom } from "./args.js";
import type { Command, Invocation } from "./command.js";
import type { Context } from "./context.js";
import { CliError, EXIT } from "./errors.js";
import { SIGNING_HELP, SIGNING_OPTIONS } from "./sigstore-options.js";

export const REGISTRY_OPTIONS = {
  "plain-http": { type: "boolean" },
  "ca-file": { type: "string" },
  username: { type: "string" },
  "password-stdin": { type: "boolean" },
  timeout: { type: "string" },
} as const;

export const REGISTRY_HELP = `  --plain-http        speak HTTP, not HTTPS, to the registry (only when you mean it)
  --ca-file FILE      trust this CA (PEM) for the registry's TLS certificate
  --username USER     registry user; the password is read with --password-stdin.
                      Else PROVENIX_REGISTRY_USERNAME / PROVENIX_REGISTRY_PASSWORD,
                      else the registry's entry in Docker's config.json
                      ($DOCKER_CONFIG/config.json or ~/.docker/config.json)
  --password-stdin    read the registry password from standard input
  --timeout SECONDS   per request (default 60)`;

function readStdin(): string {
  try {
    return readFileSync(0, "utf8").replace(/\r?\n$/, "");
  } catch {
    throw new CliError("USAGE", "--password-stdin: nothing to read on standard input");
  }
}

/** Credentials: flags, then the environment, then Docker's config.json. */
function credentialsFor(registry: string, inv: Invocation): Credentials | undefined {
  const user = inv.values.username as string | undefined;
  if (user !== undefined) {
    if (inv.values["password-stdin"] !== true) {
      throw new CliError(
        "USAGE",
        "--username needs --password-stdin (a password never goes on the command line)",
      );
    }
    return { username: user, password: readStdin() };
  }
  const envUser = process.env.PROVENIX_REGISTRY_USERNAME;
  if (envUser) return { username: envUser, password: process.env.PROVENIX_REGISTRY_PASSWORD ?? "" };
  const file = join(process.env.DOCKER_CONFIG ?? join(homedir(), ".docker"), "config.json");
  let config: { auths?: Record<string, { auth?: string; username?: string; password?: string }> };
  try {
    config = JSON.parse(readFileSync(file, "utf8")) as typeof config;
  } catch {
    return undefined;
  }
  const entry =
    config.auths?.[registry] ??
    config.auths?.[`https://${registry}`] ??
    config.auths?.[`http://${registry}`];
  if (!entry) return undefined;
  if (entry.auth) {
    const text = Buffer.from(entry.auth, "base64").toString("utf8");
    const i = text.indexOf(":");
    if (i > 0) return { username: text.slice(0, i), password: text.slice(i + 1) };
  }
  if (entry.username) return { username: entry.username, password: entry.password ?? "" };
  return undefined;
}

export function registryClient(ref: ImageReference, inv: Invocation, attempts = 4): RegistryClient {
  const timeout = inv.values.timeout === undefined ? 60 : Number(inv.values.timeout);
  if (!Number.isFinite(timeout) || timeout <= 0)
    throw new CliError("USAGE", "--timeout takes seconds above 0");
  let ca: Buffer | undefined;
  if (typeof inv.values["ca-file"] === "string") {
    try {
      ca = readFileSync(inv.values["ca-file"]);
    } catch {
      throw new CliError("INPUT", `cannot read CA file ${inv.values["ca-file"]}`);
    }
  }
  const credentials = credentialsFor(ref.registry, inv);
  const mb = (name: string, fallback: number) =>
    Math.max(1, Number(process.env[name] ?? fallback)) * 1024 * 1024;
  return new RegistryClient({
    registry: ref.registry,
    plainHttp: inv.values["plain-http"] === true,
    ...(ca ? { ca } : {}),
    ...(credentials ? { credentials } : {}),
    timeoutMs: timeout * 1000,
    attempts,
    monolithicMax: mb("PROVENIX_MONOLITHIC_MB", 1024),
    chunkSize: mb("PROVENIX_CHUNK_MB", 64),
  });
}

/** Run an image stream script (streamLayeredImage) into a temporary docker-archive. */
async function fromStreamScript(script: string): Promise<{ file: string; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), "provenix-stream-"));
  const file = join(dir, "image.tar");
  const child = spawn(script, [], { stdio: ["ignore", "pipe", "inherit"] });
  // The file is complete only once the write stream has finished, which can be
  // after the script has exited and closed its stdout.
  const [code] = await Promise.all([
    new Promise<number>((resolve, reject) => {
      child.on("error", reject);
      child.on("close", (c) => resolve(c ?? 1));
    }),
    pipeline(child.stdout, createWriteStream(file)),
  ]);
  if (code !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new OciError("NOT_AN_IMAGE", `the stream script ${script} exited with ${code}`);
  }
  return { file, dir };
}

const push: Command = {
  usage: "Usage: provenix push [options] <./result | store path> <registry>/<repository>[:tag]",
  help: `Reads an image output — a docker-archive (tar or tar.gz, as dockerTools.buildImage
and buildLayeredImage write), an OCI image layout directory, or with --stream a
script that streams one (streamLayeredImage) — and pushes its config and layers
(skipping blobs the registry has; one PUT per blob up to PROVENIX_MONOLITHIC_MB,
default 1024, else PATCH chunks of PROVENIX_CHUNK_MB, default 64)
and an OCI manifest. docker-archive layers are pushed as they are (uncompressed
tar, digest = the config's diff_id), so the config stays byte-identical.

Then, unless --no-attest, signs SLSA provenance for the derivation whose
subjects are the store output and the image (<registry>/<repository> with the
manifest digest), keeps it in the attestation store and attaches it to the image
as an OCI 1.1 referrer (artifactType ${"application/vnd.dev.sigstore.bundle.v0.3+json"}); where
the registry has no referrers API it is also listed under the sha256-<hex> tag.

Options:
  --stream            the output is a script that writes the image to stdout
  --manifest-format F oci (default: an OCI manifest, layers as they are) or docker
                      (Docker v2 schema 2, for older clients: layers gzip-compressed
                      on the way, the config unchanged)
  --no-attest         push the image only
  --cosign-att        also write cosign's legacy sha256-<hex>.att attestation tag
  --mount-from REPO   mount blobs from this repository of the same registry
  --key FILE          signing key (as for attest); env PROVENIX_KEY
  --builder-id URI    runDetails.builder.id; env PROVENIX_BUILDER_ID
  --quiet             no progress on stderr
${REGISTRY_HELP}
  --json              print the result as JSON

${SIGNING_HELP}`,
  options: {
    ...SIGNING_OPTIONS,
    ...REGISTRY_OPTIONS,
    stream: { type: "boolean" },
    quiet: { type: "boolean" },
    "manifest-format": { type: "string" },
    "no-attest": { type: "boolean" },
    "cosign-att": { type: "boolean" },
    "mount-from": { type: "string" },
    key: { type: "string" },
    "builder-id": { type: "string" },
  },
  keyIsSigningKey: true,
  builderIdIsOwn: true,
  async run(ctx, inv) {
    const [arg, dest, ...extra] = inv.positionals;
    if (arg === undefined || dest === undefined || extra.length > 0) {
      throw new CliError("USAGE", "push takes an output and a destination (see --help)");
    }
    const ref = parseReference(dest);
    const t = classifyTarget(arg, ctx.nix.storeDir);
    if (t.kind !== "output")
      throw new CliError("INPUT", `push takes a build output; '${arg}' is a ${t.kind}`);
    const format = (inv.values["manifest-format"] as string | undefined) ?? "oci";
    if (format !== "oci" && format !== "docker") {
      throw new CliError("USAGE", `--manifest-format takes oci or docker, not '${format}'`);
    }
    const attest = inv.values["no-attest"] !== true;
    const signer = attest ? await ctx.bundleSigner(inv, inv.values.key !== undefined) : undefined;
    const client = registryClient(ref, inv);
    let stream: { file: string; dir: string } | undefined;
    if (inv.values.stream === true) {
      if (!(statSync(t.path).mode & 0o111))
        throw new OciError("NOT_AN_IMAGE", `${t.path} is not an executable stream script`);
      stream = await fromStreamScript(t.path);
    }
    let image: ImageSource | undefined;
    try {
      image = await openImage(stream?.file ?? t.path);
      const quiet = inv.json || inv.values.quiet === true;
      const { pushed, attestationId, attached } = await pushAndAttest(
        {
          nix: ctx.nix,
          host: ctx.host,
          store: ctx.store,
          builderId: ctx.config.builderId,
          provenixVersion: VERSION,
          derivations: ctx.derivations,
        },
        client,
        ref,
        t.path,
        image,
        {
          ...(signer ? { signer } : {}),
          ...(typeof inv.values["mount-from"] === "string"
            ? { mountFrom: inv.values["mount-from"] }
            : {}),
          cosignLegacy: inv.values["cosign-att"] === true,
          format,
          ...(quiet
            ? {}
            : {
                progress: ({ done, total, blob }: PushEvent) =>
                  inv.io.err(
                    `[${done}/${total}] ${blob.result.padEnd(8)} ${blob.digest} (${blob.size} bytes)\n`,
                  ),
              }),
        },
      );
      const at = formatReference({ ...ref, digest: pushed.manifest.digest });
      if (inv.json) {
        printJson(inv, {
          image: at,
          manifest: pushed.manifest,
          blobs: pushed.blobs,
          source: image.kind,
          attestation: attestationId,
          referrer: attached,
        });
      } else {
        const n = (r: string) => pushed.blobs.filter((b) => b.result === r).length;
        inv.io.out(
          `pushed ${at}\n  ${n("uploaded")} blob(s) uploaded, ${n("exists")} already there, ${n("mounted")} mounted\n`,
        );
        if (attached) {
          inv.io.out(
            `  provenance #${attestationId ?? "?"} attached as ${attached.referrer} (${attached.via})\n`,
          );
          if (attached.cosignTag) inv.io.out(`  cosign attestation tag ${attached.cosignTag}\n`);
        }
      }
      return EXIT.OK;
    } finally {
      image?.close();
      if (stream) rmSync(stream.dir, { recursive: true, force: true });
    }
  },
};

/** `provenix verify oci://registry/repo@sha256:...|:tag`: the attached provenance of an image. */
/** An image in a registry by tag or digest, and the Sigstore bundles attached to it. */
export async function attachedBundles(inv: Invocation, arg: string) {
  const ref = parseReference(arg);
  const reference = ref.digest ?? ref.tag;
  if (reference === undefined) throw new CliError("USAGE", `${arg}: give a tag or a digest`);
  const client = registryClient(ref, inv);
  const m = await client.getManifest(ref.repository, reference);
  if (!m) throw new OciError("NOT_FOUND", `${formatReference(ref)} is not in the registry`);
  return { ref, digest: m.digest, ...(await findBundles(client, ref.repository, m.digest)) };
}

export async function verifyImage(
  ctx: Context,
  inv: Invocation,
  arg: string,
): Promise<{ ok: boolean; result: unknown }> {
  const found = await attachedBundles(inv, arg);
  const { ref, digest } = found;
  const trustedKeys = await trustedKeysFrom(ctx, inv);
  const builderIds = strings(inv.values["builder-id"]);
  const name = `${ref.registry}/${ref.repository}`;
  const predicateType = typeof inv.values.type === "string" ? inv.values.type : SLSA_PROVENANCE_V1;
  const checks = found.bundles.map((b) => {
    const v = verifyAttestation(b.bundle, {
      trustedKeys,
      statementTypes: FOREIGN_STATEMENT_TYPES,
      predicateType,
      subject: { name, sha256: digest.slice("sha256:".length) },
      ...(builderIds.length > 0 ? { builderIds } : {}),
    });
    return {
      referrer: b.referrer,
      source: b.source,
      ok: v.ok,
      reason: v.reason,
      signer: v.signer?.keyid,
      checks: v.checks,
    };
  });
  const ok = checks.some((c) => c.ok);
  const reason = ok
    ? undefined
    : checks.length === 0
      ? `no Sigstore bundle is attached to ${name}@${digest} (looked ${found.via === "none" ? "in the referrers API and the referrers tag" : `via the ${found.via}`}, and in cosign's .att tag)`
      : (checks[0]?.reason ?? "not verified");
  if (!inv.json) {
    inv.io.out(`${ok ? "PASS" : "FAIL"} ${name}@${digest}\n`);
    for (const c of checks) {
      const where = c.source === "cosign-att" ? "cosign .att layer" : `referrer (${found.via})`;
      inv.io.out(
        `  ${where} ${c.referrer}: ${c.ok ? `verified, signed by ${c.signer ?? "?"}` : `FAIL ${c.reason ?? ""}`}\n`,
      );
    }
    if (reason) inv.io.out(`  reason: ${reason}\n`);
  }
  return {
    ok,
    result: { image: `${name}@${digest}`, ok, reason, via: found.via, attestations: checks },
  };
}

export { push as pushCommand };
