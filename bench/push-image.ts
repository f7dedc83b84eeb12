// Benchmark: push a ~200 MB Nix-built docker-archive to a local registry with
// `provenix push` and with `skopeo copy` (the same image, a fresh repository each
// run into a fresh, empty registry, so both upload every blob), alternating; medians and the ratio.
//   node dist/bench/push-image.js [--mb 200] [--runs 3]
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { benchHome, ROOT, BIN } from "./common.js";

const { values } = parseArgs({
  options: { mb: { type: "string", default: "200" }, runs: { type: "string", default: "3" } },
});
const mb = Number(values.mb);
const runs = Number(values.runs);
const { work, env } = benchHome("push");

function sh(cmd: string, args: string[], extraEnv: NodeJS.ProcessEnv = {}): string {
  const r = spawnSync(cmd, args, {
    env: { ...env, ...extraEnv },
    encoding: "utf8",
    maxBuffer: 1 << 28,
  });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

async function freePort(): Promise<number> {
  return new Promise<number>((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const p = (s.address() as AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

/** A fresh, empty registry: nothing to mount or skip, whatever a client's caches say. */
async function freshRegistry(): Promise<{ host: string; stop: () => void }> {
  const port = await freePort();
  const dir = mkdtempSync(join(work, "registry-"));
  writeFileSync(
    join(dir, "registry.yml"),
    `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, "data")}\nhttp:\n  addr: 127.0.0.1:${port}\n`,
  );
  const p = spawn("docker-registry", ["serve", join(dir, "registry.yml")], { stdio: "ignore" });
  await sleep(800);
  return { host: `127.0.0.1:${port}`, stop: () => p.kill() };
}

{
  const image = sh("nix-build", [
    join(ROOT, "test", "fixtures", "images.nix"),
    "-A",
    "archive",
    "--argstr",
    "salt",
    String(Date.now()),
    "--arg",
    "bigMb",
    String(mb),
    "--no-out-link",
  ]).trim();
  sh(process.execPath, [BIN, "keygen"]);
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
  const time = async (f: (host: string) => void) => {
    const r = await freshRegistry();
    try {
      const t0 = process.hrtime.bigint();
      f(r.host);
      return Number(process.hrtime.bigint() - t0) / 1e9;
    } finally {
      r.stop();
    }
  };
  const pvx: number[] = [];
  const attested: number[] = [];
  const sko: number[] = [];
  for (let i = 0; i < runs; i++) {
    sko.push(
      await time((host) =>
        sh("skopeo", [
          "copy",
          "--quiet",
          "--dest-tls-verify=false",
          `docker-archive:${image}`,
          `docker://${host}/nix/app:v1`,
        ]),
      ),
    );
    pvx.push(
      await time((host) =>
        sh(process.execPath, [
          BIN,
          "push",
          "--quiet",
          "--no-attest",
          "--plain-http",
          image,
          `${host}/nix/app:v1`,
        ]),
      ),
    );
    attested.push(
      await time((host) =>
        sh(process.execPath, [BIN, "push", "--quiet", "--plain-http", image, `${host}/nix/app:v1`]),
      ),
    );
  }
  const s = median(sko);
  console.log(
    `push a ${mb} MB docker-archive to a local registry (distribution 2.8), median of ${runs}:`,
  );
  console.log(
    `  skopeo copy docker-archive: -> docker://    ${s.toFixed(2)} s  (skopeo gzips the layers on the way)`,
  );
  console.log(
    `  provenix push --no-attest                    ${median(pvx).toFixed(2)} s  ratio ${(median(pvx) / s).toFixed(2)}x`,
  );
  console.log(
    `  provenix push (+ provenance as a referrer)   ${median(attested).toFixed(2)} s  ratio ${(median(attested) / s).toFixed(2)}x`,
  );
}
