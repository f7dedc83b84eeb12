import {
  summarizeNixProvenance,
  type ContentAddressMethod,
  type Derivation,
} from "../nix/index.js";
import { STATEMENT_TYPE, type ResourceDescriptor, type Statement } from "./statement.js";

// SLSA Provenance v1.0: slsa-framework/slsa releases/v1.0 spec/provenance.md.
export const SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1";

/** provenix's buildType for a Nix derivation; documented in docs/buildtypes/nix-derivation-v1.md. */
export const NIX_DERIVATION_BUILD_TYPE = "https://provenix.dev/buildtypes/nix-derivation/v1";

export interface BuildDefinition {
  buildType: string;
  externalParameters: NixExternalParameters;
  internalParameters?: NixInternalParameters;
  resolvedDependencies?: ResourceDescriptor[];
}

export interface RunDetails {
  builder: {
    id: string;
    version?: Record<string, string>;
    builderDependencies?: ResourceDescriptor[];
  };
  metadata?: { invocationId?: string; startedOn?: string; finishedOn?: string };
  byproducts?: ResourceDescriptor[];
}

export interface SlsaProvenance {
  buildDefinition: BuildDefinition;
  runDetails: RunDetails;
}

export interface NixExternalParameters {
  /** The store path of the derivation that was built. */
  derivation: string;
  /** The installable the user asked for, e.g. `./default.nix` or `github:o/r#pkg`. */
  installable?: string;
  /** The attribute path selected from the installable (`-A`), when given. */
  attribute?: string;
  /** The output names that were requested and attested. */
  outputs: string[];
}

export interface NixInternalParameters {
  nixVersion: string;
  system: string;
  /** Build-relevant settings from the Nix configuration, as read by provenix. */
  settings: Record<string, unknown>;
  /**
   * How `settings` were observed: Nix records no settings per build, so they are what
   * `nix config show` said when provenix read them, not what the build ran with
   * (a build run with `--option` overrides is not seen). `relation` says whether they
   * were read before, during or after the build (against runDetails' times). No time
   * of its own: attesting the same build again gives the same statement.
   */
  settingsObserved?: { source: "nix config show"; relation: SettingsRelation };
  /**
   * `sandbox = true` with `sandbox-fallback = true` does not say the sandbox applied:
   * where Nix cannot sandbox it builds without one, saying so only in its log. Then a
   * probe build, when provenix ran, tells: "sandboxed", or "not-sandboxed" (Nix
   * falls back here), or "failed" (a sandboxed build cannot even start).
   */
  sandboxObserved?: { source: "probe build"; result: "sandboxed" | "not-sandboxed" | "failed" };
  /**
   * Nix's own provenance record of an output (Determinate Nix), kept whole: Nix signs
   * it nowhere, this statement does. `supplied` lists the fields of this statement
   * that were taken from it rather than observed by provenix.
   */
  nixProvenance?: {
    record: Record<string, unknown>;
    source: string;
    steps?: readonly string[];
    supplied: string[];
  };
}

/** When the settings were read, relative to the build. */
export type SettingsRelation = "before-build" | "during-build" | "after-build";

/** A fixed-output derivation's declared content: where it came from and its hash. */
export interface FixedOutputFacts {
  method: ContentAddressMethod;
  hashAlgo: string;
  hash: string;
  urls: string[];
}

export type ResolvedInput =
  | { kind: "source"; path: string; narHash: string }
  | {
      kind: "output";
      path: string;
      narHash: string;
      drvPath: string;
      output: string;
      fixedOutput?: FixedOutputFacts;
    };

export interface FlakeSource {
  /** The locked flake URL (`nix flake metadata`'s `url`). */
  url: string;
  /** The store path of the flake's source tree. */
  path: string;
  /** Hex sha256 of the source tree's NAR (the lock's narHash). */
  narHash: string;
}

export interface BuiltOutput {
  name: string;
  path: string;
  narHash: string;
}

/** Everything the provenance says, gathered beforehand by I/O code. */
export interface BuildFacts {
  drvPath: string;
  derivation: Derivation;
  /** NAR sha256 (hex) of the .drv file itself. */
  derivationNarHash: string;
  outputs: BuiltOutput[];
  inputs: ResolvedInput[];
  nixVersion: string;
  settings: Record<string, unknown>;
  /** When provenix read the settings (nix config show). */
  settingsReadOn?: Date;
  /** With sandbox = true and sandbox-fallback = true: what a probe build saw when provenix ran. */
  sandboxProbe?: "sandboxed" | "not-sandboxed" | "failed";
  /** Nix's own, unsigned provenance record of the first output that has one (Determinate Nix). */
  nixProvenance?: Record<string, unknown>;
  builderId: string;
  provenixVersion: string;
  installable?: string;
  attribute?: string;
  /** The locked flake the installable came from: its URL and the NAR sha256 of its source. */
  flake?: FlakeSource;
  startedOn?: Date;
  finishedOn?: Date;
  buildLog?: { uri: string; sha256: string; mediaType: string };
}

function relationTo(read: Date, started?: Date, finished?: Date): SettingsRelation {
  // Nix's registration time has whole seconds: compare at that grain. A read in the
  // second the outputs were registered counts as after: a path is read only once valid.
  const t = Math.floor(read.getTime() / 1000);
  if (finished && t >= Math.floor(finished.getTime() / 1000)) return "after-build";
  if (started && t < Math.floor(started.getTime() / 1000)) return "before-build";
  return finished || started ? "during-build" : "after-build";
}

function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, "Z");
}

function dependency(input: ResolvedInput): ResourceDescriptor {
  const rd: ResourceDescriptor = { name: input.path, digest: { sha256: input.narHash } };
  if (input.kind === "source") return { ...rd, annotations: { "nix.kind": "source" } };
  const annotations: Record<string, unknown> = {
    "nix.kind": "output",
    "nix.derivation": input.drvPath,
    "nix.output": input.output,
  };
  const fixed = input.fixedOutput;
  if (fixed) {
    annotations["nix.fixedOutput"] = {
      method: fixed.method,
      hashAlgo: fixed.hashAlgo,
      hash: fixed.hash,
      urls: fixed.urls,
    };
    if (fixed.urls[0] !== undefined) return { ...rd, downloadLocation: fixed.urls[0], annotations };
  }
  return { ...rd, annotations };
}

/** A stable id for one build: the derivation and when its outputs were registered. */
export function invocationId(
  facts: Pick<BuildFacts, "drvPath" | "outputs" | "finishedOn">,
): string {
  const when = facts.finishedOn ? rfc3339(facts.finishedOn) : "unknown";
  return `${facts.drvPath}@${when}`;
}

/** Build the in-toto statement carrying SLSA v1 provenance for one derivation's outputs. */
export function buildProvenance(facts: BuildFacts): Statement<SlsaProvenance> {
  const byName = (a: { name?: string }, b: { name?: string }) =>
    (a.name ?? "") < (b.name ?? "") ? -1 : (a.name ?? "") > (b.name ?? "") ? 1 : 0;
  const subject: ResourceDescriptor[] = facts.outputs
    .map((o) => ({
      name: o.path,
      digest: { sha256: o.narHash },
      annotations: { "nix.output": o.name },
    }))
    .sort(byName);

  const resolvedDependencies: ResourceDescriptor[] = [
    {
      name: facts.drvPath,
      digest: { sha256: facts.derivationNarHash },
      mediaType: "application/vnd.nixos.derivation",
      annotations: {
        "nix.kind": "derivation",
        // Its strings are not UTF-8: each byte 0x80-0xFF is carried as U+0080-U+00FF.
        ...(facts.derivation.encoding === "latin1" ? { "nix.encoding": "latin1" } : {}),
      },
    },
    ...(facts.flake
      ? [
          {
            name: facts.flake.path,
            uri: facts.flake.url,
            digest: { sha256: facts.flake.narHash },
            annotations: { "nix.kind": "flake" },
          },
        ]
      : []),
    ...facts.inputs.map(dependency).sort(byName),
  ];

  // Nix's own record (Determinate Nix) names the flake and attribute where provenix was
  // not told them; what it supplied is listed, so a reader knows whose word it is.
  const recorded = facts.nixProvenance ? summarizeNixProvenance(facts.nixProvenance) : undefined;
  const installable = facts.installable ?? recorded?.flake?.reference;
  const attribute = facts.attribute ?? recorded?.flake?.output;
  const fromRecord = [
    ...(facts.installable === undefined && installable !== undefined
      ? ["externalParameters.installable"]
      : []),
    ...(facts.attribute === undefined && attribute !== undefined
      ? ["externalParameters.attribute"]
      : []),
  ];
  const externalParameters: NixExternalParameters = {
    derivation: facts.drvPath,
    ...(installable !== undefined ? { installable } : {}),
    ...(attribute !== undefined ? { attribute } : {}),
    outputs: facts.outputs.map((o) => o.name).sort(),
  };

  const metadata: RunDetails["metadata"] = { invocationId: invocationId(facts) };
  if (facts.startedOn) metadata.startedOn = rfc3339(facts.startedOn);
  if (facts.finishedOn) metadata.finishedOn = rfc3339(facts.finishedOn);

  const runDetails: RunDetails = {
    builder: {
      id: facts.builderId,
      version: { nix: facts.nixVersion, provenix: facts.provenixVersion },
    },
    metadata,
  };
  if (facts.buildLog) {
    runDetails.byproducts = [
      {
        name: "build-log",
        uri: facts.buildLog.uri,
        digest: { sha256: facts.buildLog.sha256 },
        mediaType: facts.buildLog.mediaType,
      },
    ];
  }

  return {
    _type: STATEMENT_TYPE,
    subject,
    predicateType: SLSA_PROVENANCE_V1,
    predicate: {
      buildDefinition: {
        buildType: NIX_DERIVATION_BUILD_TYPE,
        externalParameters,
        internalParameters: {
          nixVersion: facts.nixVersion,
          system: facts.derivation.system,
          settings: facts.settings,
          ...(facts.settingsReadOn
            ? {
                settingsObserved: {
                  source: "nix config show",
                  relation: relationTo(facts.settingsReadOn, facts.startedOn, facts.finishedOn),
                },
              }
            : {}),
          ...(facts.sandboxProbe
            ? { sandboxObserved: { source: "probe build", result: facts.sandboxProbe } }
            : {}),
          ...(facts.nixProvenance
            ? {
                nixProvenance: {
                  record: facts.nixProvenance,
                  source: "recorded by Nix (ValidPaths.provenance), unsigned; read by provenix",
                  ...(recorded ? { steps: recorded.steps } : {}),
                  supplied: fromRecord,
                },
              }
            : {}),
        },
        resolvedDependencies,
      },
      runDetails,
    },
  };
}
