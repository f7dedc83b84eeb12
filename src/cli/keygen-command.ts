import { join } from "node:path";
import { generateKeyPair, nixPublicKeyText, parseSecretKey } from "../sign/index.js";
import { writeKeyPair } from "../system/key-files.js";
import { printJson } from "./args.js";
import { configDir } from "./config.js";
import type { Command } from "./command.js";
import { CliError, EXIT } from "./errors.js";

export const keygenCommand: Command = {
  usage: "Usage: provenix keygen [options]",
  help: `Writes a secret key (mode 0600, never overwriting a file) and its public key
beside it (<out> with .key replaced by .pub, or <out>.pub). The Nix format is the
one 'nix-store --generate-binary-cache-key' writes, so the public key can go in
Nix's trusted-public-keys and the secret can sign binary caches too.

Options:
  --format FORMAT   nix (default), pem-ed25519 or pem-p256
  --name NAME       the Nix key name (default: provenix-<hostname>-1)
  --out PATH        the secret key file (default ${join(configDir(), "signing.key")})
  --json            print the paths and public key as JSON`,
  options: {
    format: { type: "string" },
    name: { type: "string" },
    out: { type: "string" },
  },
  async run(ctx, inv) {
    const format = (inv.values.format as string | undefined) ?? "nix";
    if (format !== "nix" && format !== "pem-ed25519" && format !== "pem-p256") {
      throw new CliError(
        "USAGE",
        `unknown key format '${format}': use nix, pem-ed25519 or pem-p256`,
      );
    }
    const name =
      (inv.values.name as string | undefined) ??
      `provenix-${(await import("node:os")).hostname()}-1`;
    const secretPath = (inv.values.out as string | undefined) ?? ctx.config.key;
    const publicPath = secretPath.endsWith(".key")
      ? secretPath.slice(0, -4) + ".pub"
      : secretPath + ".pub";
    const pair = generateKeyPair(format, name);
    await writeKeyPair(secretPath, publicPath, pair);
    const keyid = parseSecretKey(pair.secret).publicKey;
    const publicText = format === "nix" ? nixPublicKeyText(keyid) : pair.public.trim();
    if (inv.json)
      printJson(inv, {
        secretKey: secretPath,
        publicKey: publicPath,
        keyid: keyid.keyid,
        public: publicText,
      });
    else {
      inv.io.out(
        `secret key: ${secretPath} (mode 600; keep it private)\npublic key: ${publicPath}\nkey id:     ${keyid.keyid}\n`,
      );
      if (format === "nix")
        inv.io.out(`To trust it in Nix, add to trusted-public-keys: ${publicText}\n`);
    }
    return EXIT.OK;
  },
};
