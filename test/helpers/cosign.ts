// cosign 2.5, the verifier most Sigstore users run: Debian trixie's package, unpacked
// into .tools/trixie by scripts/trixie-tools.sh (the test setup). Run offline: a
// trusted root with no services stands in for the public-good TUF root, and the
// transparency log is not asked for (bundles carry no log entries yet).
import { spawnSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, tempDir } from "./nix.js";

export const COSIGN = join(ROOT, ".tools", "trixie", "root", "usr", "bin", "cosign");

export interface CosignResult {
  code: number;
  stdout: string;
  stderr: string;
}

const home = tempDir("provenix-cosign-");

/** A trusted root with no logs, CAs or TSAs: what key-based verification needs offline. */
export const EMPTY_TRUSTED_ROOT = join(home, "trusted_root.json");
writeFileSync(
  EMPTY_TRUSTED_ROOT,
  JSON.stringify({
    mediaType: "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
    tlogs: [],
    certificateAuthorities: [],
    ctlogs: [],
    timestampAuthorities: [],
  }),
);

/** Run cosign with its own home (no ~/.sigstore of the machine's) and no password prompts. */
export function cosign(args: string[], cwd?: string): CosignResult {
  if (!existsSync(COSIGN)) {
    throw new Error(`${COSIGN} is missing: run ./scripts/setup.sh (scripts/trixie-tools.sh)`);
  }
  const r = spawnSync(COSIGN, args, {
    encoding: "utf8",
    env: { PATH: process.env.PATH, HOME: home, COSIGN_PASSWORD: "", TUF_ROOT: join(home, "tuf") },
    maxBuffer: 1 << 26,
    ...(cwd ? { cwd } : {}),
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** `cosign verify-blob-attestation` of a new-format bundle against the artifact's bytes. */
export function cosignVerifyBlob(
  bundle: string,
  key: string,
  predicateType: string,
  artifact: string,
): CosignResult {
  return cosign([
    "verify-blob-attestation",
    "--bundle",
    bundle,
    "--new-bundle-format",
    "--trusted-root",
    EMPTY_TRUSTED_ROOT,
    "--key",
    key,
    "--type",
    predicateType,
    "--insecure-ignore-tlog=true",
    artifact,
  ]);
}

/** A cosign key pair (cosign.key encrypted with the empty password, cosign.pub PEM). */
export function cosignKeyPair(): { dir: string; key: string; pub: string } {
  const dir = tempDir("provenix-cosign-key-");
  const r = cosign(["generate-key-pair"], dir);
  if (r.code !== 0) throw new Error(`cosign generate-key-pair: ${r.stderr}`);
  return { dir, key: join(dir, "cosign.key"), pub: join(dir, "cosign.pub") };
}

/** `cosign attest` (an image) or `attest-blob` with a key, an SLSA v1 predicate, no log. */
export function cosignAttest(
  command: "attest" | "attest-blob",
  key: string,
  predicate: string,
  ...args: string[]
): CosignResult {
  return cosign([
    command,
    "--key",
    key,
    "--predicate",
    predicate,
    "--type",
    "slsaprovenance1",
    "--tlog-upload=false",
    "--yes",
    ...args,
  ]);
}
