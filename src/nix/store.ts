import type { Derivation } from "./derivation.js";

/** What Nix knows about a valid store path (`nix path-info --json`, the ValidPaths table). */
export interface PathInfo {
  readonly path: string;
  /** Lower-case hex sha256 of the path's NAR serialisation. */
  readonly narHash: string;
  readonly narSize: number;
  readonly references: readonly string[];
  readonly deriver?: string;
  /** Seconds since the epoch. */
  readonly registrationTime?: number;
  /** True when the path was built on this machine rather than substituted. */
  readonly ultimate: boolean;
  /** Binary-cache signatures, `keyname:base64`. */
  readonly signatures: readonly string[];
  /** Content-address assertion, such as `fixed:r:sha256:...` or `text:sha256:...`. */
  readonly ca?: string;
  /**
   * Nix's own record of where the path came from (Determinate Nix 3.16+, setting
   * `provenance`): a chain of steps, unsigned. See nix-provenance.ts.
   */
  readonly provenance?: Record<string, unknown>;
}

/** Queries a Nix store answers. One interface, several adapters (nix CLI, Nix database). */
export interface NixStore {
  readonly storeDir: string;
  /** Path infos of the given valid paths; paths that are not valid are absent from the map. */
  pathInfos(paths: readonly string[]): Promise<Map<string, PathInfo>>;
  /** The NAR sha256 (hex) of the given valid paths; cheaper than pathInfos when that is all. */
  narHashes(paths: readonly string[]): Promise<Map<string, string>>;
  /** The closure (the paths and everything they reference), sorted. */
  closure(paths: readonly string[]): Promise<string[]>;
  /** The realised output paths of a derivation, by output name; unbuilt outputs are absent. */
  derivationOutputs(drvPath: string): Promise<Map<string, string>>;
  /** derivationOutputs of many derivations at once, by derivation. */
  derivationOutputsOf(drvPaths: readonly string[]): Promise<Map<string, Map<string, string>>>;
  readDerivation(drvPath: string): Promise<Derivation>;
}

/** A row of Nix's ValidPaths table, as the daemon observes it. */
export interface RegisteredPath {
  /** ValidPaths.id: grows with every registration, so it serves as a checkpoint. */
  readonly id: number;
  readonly path: string;
  readonly deriver: string | null;
  /** Seconds since the epoch. */
  readonly registrationTime: number;
  /** Built on this machine (Nix sets `ultimate` only for local builds). */
  readonly ultimate: boolean;
  readonly signatures: readonly string[];
  readonly ca: string | null;
}
