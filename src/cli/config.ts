import { existsSync, readFileSync } from "node:fs";
import { hostname, homedir } from "node:os";
import { join } from "node:path";
import { CliError } from "./errors.js";

/** provenix's settings, from flags > environment > config file > defaults. */
export interface Config {
  /** The embedded attestation store (SQLite file). */
  readonly store: string;
  /** Signing key file used by `attest`. */
  readonly key: string;
  /** Public keys trusted by `verify`: key texts (`name:base64`) or files. */
  readonly trustedKeys: readonly string[];
  /** Also trust Nix's `trusted-public-keys`. */
  readonly useNixTrustedKeys: boolean;
  readonly builderId: string;
  /** Declared: this machine is a dedicated build host, not a workstation (SLSA "hosted"). */
  readonly hosted: boolean;
  /** Declared: where consumers get the provenance (SLSA "distribute provenance"). */
  readonly distribution?: string;
  /** The config file that was read, if any. */
  readonly configFile?: string;
}

export interface ConfigFlags {
  store?: string;
  config?: string;
  key?: string;
  builderId?: string;
}

function xdg(variable: string, fallback: string): string {
  const v = process.env[variable];
  return v && v.startsWith("/") ? v : join(homedir(), fallback);
}

/** Data provenix keeps: the attestation store, the vulnerability database. */
export function dataDir(): string {
  return join(xdg("XDG_DATA_HOME", ".local/share"), "provenix");
}

/** The vulnerability database: the given file, else $XDG_DATA_HOME/provenix/vulns.db. */
export function vulnDbPath(given: unknown): string {
  return typeof given === "string" ? given : join(dataDir(), "vulns.db");
}

/** Caches that can be rebuilt (the TUF copy of the Sigstore trusted root). */
export function cacheDir(): string {
  return join(xdg("XDG_CACHE_HOME", ".cache"), "provenix");
}

export function configDir(): string {
  return join(xdg("XDG_CONFIG_HOME", ".config"), "provenix");
}

export function defaultKeyPath(): string {
  return join(configDir(), "signing.key");
}

export function defaultBuilderId(): string {
  return `https://provenix.dev/builders/nix-local/v1#${hostname()}`;
}

interface ConfigFile {
  store?: string;
  key?: string;
  trustedKeys?: string[];
  useNixTrustedKeys?: boolean;
  builderId?: string;
  hosted?: boolean;
  distribution?: string;
}

function readConfigFile(path: string, required: boolean): ConfigFile | undefined {
  if (!existsSync(path)) {
    if (required) throw new CliError("CONFIG", `config file ${path} does not exist`);
    return undefined;
  }
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new CliError("CONFIG", `config file ${path} is not valid JSON: ${(e as Error).message}`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new CliError("CONFIG", `config file ${path} must hold a JSON object`);
  }
  const c = value as Record<string, unknown>;
  const known = new Set([
    "store",
    "key",
    "trustedKeys",
    "useNixTrustedKeys",
    "builderId",
    "hosted",
    "distribution",
  ]);
  for (const k of Object.keys(c)) {
    if (!known.has(k)) throw new CliError("CONFIG", `config file ${path}: unknown setting '${k}'`);
  }
  for (const k of ["store", "key", "builderId", "distribution"]) {
    if (c[k] !== undefined && typeof c[k] !== "string") {
      throw new CliError("CONFIG", `config file ${path}: '${k}' must be a string`);
    }
  }
  if (
    c.trustedKeys !== undefined &&
    !(Array.isArray(c.trustedKeys) && c.trustedKeys.every((k) => typeof k === "string"))
  ) {
    throw new CliError("CONFIG", `config file ${path}: 'trustedKeys' must be a list of strings`);
  }
  for (const k of ["useNixTrustedKeys", "hosted"]) {
    if (c[k] !== undefined && typeof c[k] !== "boolean") {
      throw new CliError("CONFIG", `config file ${path}: '${k}' must be true or false`);
    }
  }
  return c;
}

export function loadConfig(flags: ConfigFlags): Config {
  const env = process.env;
  const explicit = flags.config ?? env.PROVENIX_CONFIG;
  const file = explicit ?? join(configDir(), "config.json");
  const fromFile = readConfigFile(file, explicit !== undefined) ?? {};
  const defaultPub = join(configDir(), "signing.pub");
  return {
    store:
      flags.store ?? env.PROVENIX_STORE ?? fromFile.store ?? join(dataDir(), "attestations.db"),
    key: flags.key ?? env.PROVENIX_KEY ?? fromFile.key ?? defaultKeyPath(),
    trustedKeys: fromFile.trustedKeys ?? (existsSync(defaultPub) ? [defaultPub] : []),
    useNixTrustedKeys: fromFile.useNixTrustedKeys ?? true,
    builderId:
      flags.builderId ?? env.PROVENIX_BUILDER_ID ?? fromFile.builderId ?? defaultBuilderId(),
    hosted: fromFile.hosted ?? false,
    ...(fromFile.distribution !== undefined ? { distribution: fromFile.distribution } : {}),
    ...(existsSync(file) ? { configFile: file } : {}),
  };
}
