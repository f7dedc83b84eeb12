// Keys in hardware: a SoftHSM2 token (Debian's softhsm2) holds ECDSA P-256 and
// Ed25519 keys generated inside it, never extractable; provenix signs with them by
// RFC 7512 URI, and cosign and provenix verify the bundles with the exported key.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import test from "node:test";
import pkcs11js from "pkcs11js";
import { cliHome, isOneLineError, provenix } from "../helpers/cli.js";
import { cosignVerifyBlob } from "../helpers/cosign.js";
import { BUILDS, run, tempDir, useTestNix } from "../helpers/nix.js";

useTestNix();
const SALT = `pkcs11-${process.pid}-${Date.now()}`;
const MODULE = "/usr/lib/softhsm/libsofthsm2.so";
const PIN = "1234";

/** A fresh SoftHSM token with a P-256 and an Ed25519 key pair made inside it. */
function token(): { conf: string; pinFile: string; label: string } {
  const dir = tempDir("provenix-softhsm-");
  const conf = join(dir, "softhsm2.conf");
  writeFileSync(
    conf,
    `directories.tokendir = ${dir}\nobjectstore.backend = file\nlog.level = ERROR\n`,
  );
  const env = { ...process.env, SOFTHSM2_CONF: conf };
  const label = "provenix-test";
  execFileSync(
    "softhsm2-util",
    ["--init-token", "--free", "--label", label, "--so-pin", "5678", "--pin", PIN],
    { env },
  );
  process.env.SOFTHSM2_CONF = conf;
  const p11 = new pkcs11js.PKCS11();
  p11.load(MODULE);
  p11.C_Initialize();
  try {
    const slot = p11
      .C_GetSlotList(true)
      .find((s) => p11.C_GetTokenInfo(s).label.trim() === label) as pkcs11js.Handle;
    const session = p11.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
    p11.C_Login(session, pkcs11js.CKU_USER, PIN);
    const pair = (name: string, id: number, mechanism: number, params: Buffer) => {
      const common = [
        { type: pkcs11js.CKA_TOKEN, value: true },
        { type: pkcs11js.CKA_LABEL, value: name },
        { type: pkcs11js.CKA_ID, value: Buffer.from([id]) },
      ];
      const keys = p11.C_GenerateKeyPair(
        session,
        { mechanism },
        [
          ...common,
          { type: pkcs11js.CKA_EC_PARAMS, value: params },
          { type: pkcs11js.CKA_VERIFY, value: true },
        ],
        [
          ...common,
          { type: pkcs11js.CKA_SIGN, value: true },
          { type: pkcs11js.CKA_PRIVATE, value: true },
          { type: pkcs11js.CKA_SENSITIVE, value: true },
          { type: pkcs11js.CKA_EXTRACTABLE, value: false },
        ],
      );
      // The secret cannot be read out of the token.
      assert.throws(
        () => p11.C_GetAttributeValue(session, keys.privateKey, [{ type: pkcs11js.CKA_VALUE }]),
        /CKR_ATTRIBUTE_SENSITIVE/,
      );
    };
    pair("p256", 1, pkcs11js.CKM_EC_KEY_PAIR_GEN, Buffer.from("06082a8648ce3d030107", "hex"));
    pair("ed25519", 2, 0x1055 /* CKM_EC_EDWARDS_KEY_PAIR_GEN */, Buffer.from("06032b6570", "hex"));
    p11.C_Logout(session);
    p11.C_CloseSession(session);
  } finally {
    p11.C_Finalize();
  }
  const pinFile = join(dir, "pin");
  writeFileSync(pinFile, `${PIN}\n`, { mode: 0o600 });
  return { conf, pinFile, label };
}

test("sign with keys in a PKCS#11 token (SoftHSM2, P-256 and Ed25519): cosign and provenix verify with the exported public key", () => {
  const t = token();
  const app = run("nix-build", [
    BUILDS,
    "-A",
    "app",
    "--argstr",
    "salt",
    SALT,
    "--no-out-link",
  ]).trim();
  const nar = join(tempDir(), "app.nar");
  writeFileSync(nar, execFileSync("nix-store", ["--dump", app], { maxBuffer: 1 << 30 }));
  for (const object of ["p256", "ed25519"]) {
    const env = { ...cliHome(), SOFTHSM2_CONF: t.conf };
    const uri = `pkcs11:token=${t.label};object=${object}?module-path=${MODULE}&pin-source=file:${t.pinFile}`;
    const a = provenix(["attest", "--json", "--key", uri, app], env);
    assert.equal(a.code, 0, a.stderr);
    const pem = join(tempDir(), `${object}.pem`);
    const e = provenix(["key", "export", "--out", pem, uri], env);
    assert.equal(e.code, 0, e.stderr);
    assert.match(readFileSync(pem, "utf8"), /^-----BEGIN PUBLIC KEY-----/);
    const v = provenix(["verify", "--no-nix-keys", "--key", pem, app], env);
    assert.equal(v.code, 0, `${object}: ${v.stdout}`);
    const dir = tempDir();
    assert.equal(provenix(["export", "--all", "-o", dir, app], env).code, 0);
    const bundle = join(dir, readdirOne(dir));
    const c = cosignVerifyBlob(bundle, pem, "slsaprovenance1", nar);
    assert.equal(c.code, 0, `${object}: ${c.stderr}`);
    // The same URI through the environment: module and PIN from PROVENIX_PKCS11_*.
    const viaEnv = provenix(["attest", "--key", `pkcs11:token=${t.label};object=${object}`, app], {
      ...env,
      PROVENIX_PKCS11_MODULE: MODULE,
      PROVENIX_PKCS11_PIN: PIN,
    });
    assert.equal(viaEnv.code, 0, viaEnv.stderr);
  }
});

function readdirOne(dir: string): string {
  const out = execFileSync("ls", [dir], { encoding: "utf8" }).trim().split("\n");
  assert.equal(out.length, 1);
  return out[0] ?? "";
}

test("PKCS#11 failures: a wrong PIN, no such key, no module, a malformed URI: one line, exit 4, the PIN never shown", () => {
  const t = token();
  const env = { ...cliHome(), SOFTHSM2_CONF: t.conf };
  const app = run("nix-build", [
    BUILDS,
    "-A",
    "app",
    "--argstr",
    "salt",
    `${SALT}-bad`,
    "--no-out-link",
  ]).trim();
  const secretPin = "98765";
  for (const [uri, reason] of [
    [
      `pkcs11:token=${t.label};object=p256?module-path=${MODULE}&pin-value=${secretPin}`,
      /the PIN is incorrect/,
    ],
    [
      `pkcs11:token=${t.label};object=nothing?module-path=${MODULE}&pin-value=${PIN}`,
      /no private key matches/,
    ],
    [
      `pkcs11:token=other;object=p256?module-path=${MODULE}&pin-value=${PIN}`,
      /no token in .* matches/,
    ],
    [`pkcs11:token=${t.label};object=p256?module-path=/nonexistent/lib.so`, /cannot load module/],
    [`pkcs11:token=${t.label};object=p256`, /no module/],
    [`pkcs11:token=${t.label};bogus=1?module-path=${MODULE}`, /unknown attribute 'bogus'/],
  ] as const) {
    const r = provenix(["attest", "--key", uri, app], env);
    assert.equal(r.code, 4, `${uri}: ${r.stderr}`);
    assert.ok(isOneLineError(r), r.stderr);
    assert.match(r.stderr, reason);
    assert.doesNotMatch(r.stderr, new RegExp(secretPin), "the PIN is not shown");
  }
  // A PIN file others can read is refused, like a key file.
  const open = join(tempDir(), "pin");
  writeFileSync(open, PIN, { mode: 0o644 });
  const r = provenix(
    [
      "attest",
      "--key",
      `pkcs11:token=${t.label};object=p256?module-path=${MODULE}&pin-source=file:${open}`,
      app,
    ],
    env,
  );
  assert.equal(r.code, 4, r.stderr);
  assert.match(r.stderr, /readable by group or others; run: chmod 600/);
});
