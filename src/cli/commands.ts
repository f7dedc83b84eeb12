import type { Command } from "./command.js";

// The commands: what `provenix --help` lists, and where each one lives. A
// command's module (and all it needs) is loaded only when that command runs, so
// that `provenix status` does not pay for loading the SBOM writer, the OCI client
// and the rest.

export interface CommandEntry {
  summary: string;
  load(): Promise<Command>;
}

export const COMMANDS: Record<string, CommandEntry> = {
  attest: {
    summary: "sign SLSA provenance for the outputs of a Nix build",
    load: async () => (await import("./attest-command.js")).attestCommand,
  },
  verify: {
    summary: "verify store paths or bundle files against signed provenance",
    load: async () => (await import("./verify-command.js")).verifyCommand,
  },
  sbom: {
    summary: "write a CycloneDX or SPDX SBOM of a runtime or build closure",
    load: async () => (await import("./sbom-command.js")).sbomCommand,
  },
  show: {
    summary: "list the attestations stored for a path or derivation",
    load: async () => (await import("./store-commands.js")).showCommand,
  },
  export: {
    summary: "write stored attestations as Sigstore bundles or in-toto JSON Lines",
    load: async () => (await import("./store-commands.js")).exportCommand,
  },
  keygen: {
    summary: "make a signing key pair (Nix ed25519, or PEM Ed25519 / ECDSA P-256)",
    load: async () => (await import("./keygen-command.js")).keygenCommand,
  },
  key: {
    summary: "export a public key as PEM (for cosign, sigstore-go, sigstore-js) or as Nix",
    load: async () => (await import("./key-command.js")).keyCommand,
  },
  daemon: {
    summary: "attest every output built on this machine, as builds happen (chains mode)",
    load: async () => (await import("./daemon-command.js")).daemonCommand,
  },
  status: {
    summary: "the daemon's journal: queue depth, rate, failures, last error, checkpoint",
    load: async () => (await import("./daemon-command.js")).statusCommand,
  },
  hook: {
    summary: "install or remove the post-build-hook that spools builds for the daemon",
    load: async () => (await import("./daemon-command.js")).hookCommand,
  },
  assess: {
    summary: "which SLSA Build level this machine can claim, requirement by requirement",
    load: async () => (await import("./assess-command.js")).assessCommand,
  },
  push: {
    summary: "push a Nix-built image to an OCI registry with its signed provenance attached",
    load: async () => (await import("./oci-command.js")).pushCommand,
  },
  publish: {
    summary: "publish the attestations of store paths to the binary cache that serves them",
    load: async () => (await import("./cache-command.js")).publishCommand,
  },
  rebuild: {
    summary: "rebuild and compare (nix --check); sign a reproducibility attestation",
    load: async () => (await import("./rebuild-command.js")).rebuildCommand,
  },
  consensus: {
    summary: "which trusted builders agree on the NAR hash of outputs",
    load: async () => (await import("./rebuild-command.js")).consensusCommand,
  },
  import: {
    summary: "keep other builders' signed attestations in the local store",
    load: async () => (await import("./rebuild-command.js")).importCommand,
  },
  report: {
    summary: "print a report kept in the store by its sha256 (rebuild diffs)",
    load: async () => (await import("./rebuild-command.js")).reportCommand,
  },
  vulns: {
    summary: "known vulnerabilities in a closure, from a local OSV/CVE database",
    load: async () => (await import("./vulns-command.js")).vulnsCommand,
  },
  gc: {
    summary: "remove attestations of store paths that are gone, past a retention period",
    load: async () => (await import("./gc-command.js")).gcCommand,
  },
};
