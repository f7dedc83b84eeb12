import { existsSync } from "node:fs";
import { DerivationCache } from "../attest/index.js";
import type { NixStore } from "../nix/index.js";
import { parsePublicKey, type BundleSigner, type PublicKey, type Signer } from "../sign/index.js";
import { LocalBuildHost } from "../system/build-host.js";
import { loadPublicKeys, loadSigner, parsePublicKeyList } from "../system/key-files.js";
import { NixCliStore } from "../system/nix-cli.js";
import { DEFAULT_NIX_DB, NixDbStore } from "../system/nix-db.js";
import { AttestationStore } from "../store/index.js";
import type { Invocation } from "./command.js";
import type { Config } from "./config.js";
import { CliError } from "./errors.js";
import { bundleSigner } from "./sigstore-options.js";

/**
 * The Nix store adapter: the read-only database when it can be opened (measured
 * faster, see bench/), else the nix CLI. PROVENIX_NIX_STORE=cli|db forces one.
 */
export function openNixStore(): NixStore {
  const choice = process.env.PROVENIX_NIX_STORE;
  if (choice === "cli") return new NixCliStore();
  const db = process.env.NIX_DB ?? DEFAULT_NIX_DB;
  if (choice === "db" || existsSync(db)) {
    try {
      return new NixDbStore(db);
    } catch (e) {
      if (choice === "db") throw e;
    }
  }
  return new NixCliStore();
}

/** Lazily opened resources shared by the commands of one run. */
export class Context {
  private nixStore?: NixStore;
  private attestations?: AttestationStore;
  readonly host = new LocalBuildHost();
  private cache?: DerivationCache;

  constructor(public config: Config) {}

  get nix(): NixStore {
    this.nixStore ??= openNixStore();
    return this.nixStore;
  }

  get derivations(): DerivationCache {
    this.cache ??= new DerivationCache(this.nix);
    return this.cache;
  }

  get store(): AttestationStore {
    this.attestations ??= AttestationStore.open(this.config.store);
    return this.attestations;
  }

  /** Keys from flags, the config file, and (unless disabled) Nix's trusted-public-keys. */
  async trustedKeys(flags: {
    keyFiles: string[];
    keyTexts: string[];
    nixKeys: boolean;
  }): Promise<PublicKey[]> {
    const keys: PublicKey[] = [];
    for (const f of flags.keyFiles) keys.push(...(await loadPublicKeys(f)));
    for (const t of flags.keyTexts) keys.push(parsePublicKey(t));
    for (const entry of this.config.trustedKeys) {
      keys.push(
        ...(/^[^/:\s]+:[A-Za-z0-9+/=]+$/.test(entry)
          ? [parsePublicKey(entry)]
          : await loadPublicKeys(entry)),
      );
    }
    if (flags.nixKeys && this.config.useNixTrustedKeys) keys.push(...(await this.nixTrustedKeys()));
    return keys;
  }

  /** The keys of Nix's trusted-public-keys setting. */
  async nixTrustedKeys(): Promise<PublicKey[]> {
    const nixKeys = (await this.host.nixSettings()).all["trusted-public-keys"];
    const text = Array.isArray(nixKeys)
      ? nixKeys.join(" ")
      : typeof nixKeys === "string"
        ? nixKeys
        : "";
    return parsePublicKeyList(text);
  }

  /** What signs bundles: the signing key, or keyless, with the Sigstore options of `inv`. */
  bundleSigner(inv: Invocation, explicitKey: boolean): Promise<BundleSigner> {
    return bundleSigner(inv, () => this.signer(explicitKey), explicitKey);
  }

  /** The signing key from --key, PROVENIX_KEY, the config file or the default path. */
  async signer(explicit: boolean): Promise<Signer> {
    return loadSigner(this.config.key).catch((e: unknown) => {
      if (
        (e as { code?: string }).code === "KEY_FILE_UNREADABLE" &&
        !explicit &&
        !process.env.PROVENIX_KEY
      ) {
        throw new CliError(
          "USAGE",
          `no signing key at ${this.config.key}: run 'provenix keygen' or pass --key`,
        );
      }
      throw e;
    });
  }

  close(): void {
    this.attestations?.close();
    if (this.nixStore instanceof NixDbStore) this.nixStore.close();
  }
}
