import {
  fetchUrls,
  isFixedOutput,
  NixError,
  type Derivation,
  type NixStore,
  type PathInfo,
} from "../nix/index.js";
import type {
  BuildFacts,
  BuiltOutput,
  FixedOutputFacts,
  FlakeSource,
  ResolvedInput,
} from "./provenance.js";

/** A build log as Nix keeps it, and the times it tells. */
export interface BuildLog {
  uri: string;
  sha256: string;
  mediaType: string;
  startedOn?: Date;
  finishedOn?: Date;
}

/** What a probe build saw of the sandbox on this machine (see LocalBuildHost). */
export interface SandboxProbe {
  readonly result: "sandboxed" | "not-sandboxed" | "failed";
  readonly detail: string;
}

/** Nix's version and settings, and when provenix read them. */
export interface NixInfo {
  readonly version: string;
  readonly settings: Record<string, unknown>;
  /**
   * When `nix config show` gave these settings. Nix keeps no record of the settings a
   * build ran with, so this time is what a reader can weigh them by.
   */
  readonly settingsReadOn?: Date;
  /** With sandbox = true and sandbox-fallback = true: whether builds here get the sandbox. */
  readonly sandboxProbe?: SandboxProbe;
}

/** What the build host tells beyond the store: Nix's version and settings, build logs. */
export interface BuildHost {
  nixInfo(): Promise<NixInfo>;
  buildLog(drvPath: string): Promise<BuildLog | undefined>;
}

export interface GatherOptions {
  builderId: string;
  provenixVersion: string;
  /** Attest only these outputs (default: every output). */
  outputs?: readonly string[];
  installable?: string;
  attribute?: string;
  flake?: FlakeSource;
}

/**
 * Reads each derivation, and the outputs of each input derivation, once per run,
 * however many builds share them. For one run only: outputs appear as builds finish.
 */
export class DerivationCache {
  private readonly derivations = new Map<string, Promise<Derivation>>();
  private readonly outputs = new Map<string, Promise<Map<string, string>>>();
  /**
   * `retain: false` reads each derivation afresh and keeps none, for one pass over a
   * large graph that visits each once (an SBOM): memory stays flat.
   */
  constructor(
    private readonly store: NixStore,
    private readonly o: { retain?: boolean } = {},
  ) {}
  get(drvPath: string): Promise<Derivation> {
    if (this.o.retain === false) return this.store.readDerivation(drvPath);
    let d = this.derivations.get(drvPath);
    if (!d) {
      d = this.store.readDerivation(drvPath);
      this.derivations.set(drvPath, d);
    }
    return d;
  }
  /** Realised outputs of a derivation (built, so they do not change), read once. */
  outputsOf(drvPath: string): Promise<Map<string, string>> {
    let o = this.outputs.get(drvPath);
    if (!o) {
      o = this.store.derivationOutputs(drvPath);
      this.outputs.set(drvPath, o);
    }
    return o;
  }

  /**
   * Read ahead for attesting these derivations: their .drv files and their inputs'
   * (in parallel), every realised output in one query, every path info in one.
   */
  async prefetch(drvPaths: readonly string[]): Promise<void> {
    const drvs = await Promise.all(drvPaths.map((d) => this.get(d)));
    const inputs = [...new Set(drvs.flatMap((d) => d.inputDrvs.map(([p]) => p)))];
    await Promise.all(inputs.map((i) => this.get(i)));
    const ask = [...new Set([...drvPaths, ...inputs])].filter((d) => !this.outputs.has(d));
    const outputs = await this.store.derivationOutputsOf(ask);
    for (const d of ask)
      this.outputs.set(d, Promise.resolve(outputs.get(d) ?? new Map<string, string>()));
    await this.pathInfos([
      ...drvPaths,
      ...[...outputs.values()].flatMap((m) => [...m.values()]),
      ...drvs.flatMap((d) => d.inputSrcs),
    ]);
  }

  private readonly infos = new Map<string, PathInfo>();

  /**
   * Path infos, each valid path queried once for the cache's life (a batch, or one
   * command): valid paths do not change. A path not valid is asked again next time.
   */
  async pathInfos(paths: readonly string[]): Promise<Map<string, PathInfo>> {
    const missing = [...new Set(paths.filter((p) => !this.infos.has(p)))];
    if (missing.length > 0)
      for (const [p, info] of await this.store.pathInfos(missing)) this.infos.set(p, info);
    const out = new Map<string, PathInfo>();
    for (const p of paths) {
      const info = this.infos.get(p);
      if (info) out.set(p, info);
    }
    return out;
  }
}

type WithoutNarHash<T> = T extends unknown ? Omit<T, "narHash"> : never;

function fixedOutputFacts(drv: Derivation): FixedOutputFacts | undefined {
  const out = drv.outputs[0]?.[1];
  if (!isFixedOutput(drv) || out?.kind !== "caFixed") return undefined;
  return { method: out.method, hashAlgo: out.hashAlgo, hash: out.hash, urls: fetchUrls(drv) };
}

function required(infos: Map<string, PathInfo>, path: string, role: string): PathInfo {
  const info = infos.get(path);
  if (!info) throw new NixError("NOT_VALID", `${role} ${path} is not a valid store path`);
  return info;
}

/** Gather the facts of the build of `drvPath` from the store and the host. */
export async function gatherBuildFacts(
  store: NixStore,
  host: BuildHost,
  drvPath: string,
  options: GatherOptions,
  derivations: DerivationCache = new DerivationCache(store),
): Promise<BuildFacts> {
  const derivation = await derivations.get(drvPath);
  const realised = await derivations.outputsOf(drvPath);
  const wanted = options.outputs ?? derivation.outputs.map(([name]) => name);
  const outputs: { name: string; path: string }[] = [];
  for (const name of wanted) {
    if (!derivation.outputs.some(([n]) => n === name)) {
      throw new NixError("NOT_BUILT", `${drvPath} has no output '${name}'`);
    }
    const path = realised.get(name);
    if (path === undefined) {
      throw new NixError(
        "NOT_BUILT",
        `output '${name}' of ${drvPath} is not built (build it first, or use --build)`,
      );
    }
    outputs.push({ name, path });
  }

  const inputs: WithoutNarHash<ResolvedInput>[] = derivation.inputSrcs.map((path) => ({
    kind: "source" as const,
    path,
  }));
  for (const [inputDrvPath, names] of derivation.inputDrvs) {
    const inputDrv = await derivations.get(inputDrvPath);
    const inputOutputs = await derivations.outputsOf(inputDrvPath);
    const fixedOutput = fixedOutputFacts(inputDrv);
    for (const output of names) {
      const path = inputOutputs.get(output);
      if (path === undefined) {
        throw new NixError("NOT_VALID", `input ${inputDrvPath}^${output} is not in the store`);
      }
      inputs.push({
        kind: "output",
        path,
        drvPath: inputDrvPath,
        output,
        ...(fixedOutput ? { fixedOutput } : {}),
      });
    }
  }

  const infos = await derivations.pathInfos([
    drvPath,
    ...outputs.map((o) => o.path),
    ...inputs.map((i) => i.path),
  ]);
  const builtOutputs: BuiltOutput[] = outputs.map((o) => ({
    ...o,
    narHash: required(infos, o.path, "output").narHash,
  }));
  const resolved = inputs.map((i) => ({ ...i, narHash: required(infos, i.path, "input").narHash }));
  const nixProvenance = builtOutputs
    .map((o) => infos.get(o.path)?.provenance)
    .find((p) => p !== undefined);
  const registered = builtOutputs
    .map((o) => infos.get(o.path)?.registrationTime)
    .filter((t): t is number => t !== undefined);

  const [nix, log] = await Promise.all([host.nixInfo(), host.buildLog(drvPath)]);
  const finishedOn =
    registered.length > 0 ? new Date(Math.max(...registered) * 1000) : log?.finishedOn;
  return {
    drvPath,
    derivation,
    derivationNarHash: required(infos, drvPath, "derivation").narHash,
    outputs: builtOutputs,
    inputs: resolved,
    nixVersion: nix.version,
    settings: nix.settings,
    ...(nix.settingsReadOn ? { settingsReadOn: nix.settingsReadOn } : {}),
    ...(nixProvenance ? { nixProvenance } : {}),
    ...(nix.sandboxProbe ? { sandboxProbe: nix.sandboxProbe.result } : {}),
    builderId: options.builderId,
    provenixVersion: options.provenixVersion,
    ...(options.installable !== undefined ? { installable: options.installable } : {}),
    ...(options.attribute !== undefined ? { attribute: options.attribute } : {}),
    ...(options.flake ? { flake: options.flake } : {}),
    ...(log?.startedOn ? { startedOn: log.startedOn } : {}),
    ...(finishedOn ? { finishedOn } : {}),
    ...(log ? { buildLog: { uri: log.uri, sha256: log.sha256, mediaType: log.mediaType } } : {}),
  };
}
