// A real OCI registry (Debian's docker-registry, distribution 2.8) on 127.0.0.1 for a
// test: without auth, with htpasswd basic auth, behind TLS with a self-signed CA, or
// with token auth served by a small token issuer; and a fault-injecting proxy.
import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createPrivateKey, createSign, randomUUID } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import * as http from "node:http";
import * as net from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { tempDir } from "./nix.js";

export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function openssl(dir: string, ...args: string[]): void {
  execFileSync("openssl", args, { cwd: dir, stdio: "ignore" });
}

/** A CA and a server certificate for 127.0.0.1 signed by it (PEM files in `dir`). */
export function makeCertificates(dir: string): { ca: string; cert: string; key: string } {
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  openssl(
    dir,
    "req",
    "-x509",
    ...ec,
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
    "-days",
    "2",
    "-subj",
    "/CN=provenix test CA",
  );
  openssl(
    dir,
    "req",
    ...ec,
    "-keyout",
    "server.key",
    "-out",
    "server.csr",
    "-subj",
    "/CN=127.0.0.1",
  );
  writeFileSync(join(dir, "ext.cnf"), "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n");
  openssl(
    dir,
    "x509",
    "-req",
    "-in",
    "server.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "server.pem",
    "-days",
    "2",
    "-extfile",
    "ext.cnf",
  );
  return { ca: join(dir, "ca.pem"), cert: join(dir, "server.pem"), key: join(dir, "server.key") };
}

/**
 * A bcrypt htpasswd line (the registry accepts only bcrypt), by Apache's htpasswd
 * (Debian apache2-utils): Python's crypt module, used before, is gone in 3.13.
 */
function htpasswd(user: string, password: string): string {
  const r = spawnSync("htpasswd", ["-nbB", user, password], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`htpasswd failed: ${r.stderr}`);
  return `${r.stdout.trim()}\n`;
}

export interface RegistryOptions {
  readonly basic?: { user: string; password: string };
  readonly tls?: boolean;
  /** Token auth: the registry trusts tokens from an issuer this helper runs. */
  readonly token?: { user: string; password: string };
  /** Listen on this port (default: a free one). */
  readonly port?: number;
}

export class Registry {
  private constructor(
    readonly host: string,
    readonly dir: string,
    readonly caFile: string | undefined,
    private readonly processes: ChildProcess[],
    private readonly servers: http.Server[],
  ) {}

  static async start(
    t: { after(fn: () => unknown): void },
    o: RegistryOptions = {},
  ): Promise<Registry> {
    const dir = tempDir("provenix-registry-");
    const port = o.port ?? (await freePort());
    const lines = [
      "version: 0.1",
      "log:",
      "  level: error",
      "storage:",
      "  filesystem:",
      `    rootdirectory: ${join(dir, "data")}`,
      "  delete:",
      "    enabled: true",
      "http:",
      `  addr: 127.0.0.1:${port}`,
    ];
    let ca: string | undefined;
    const servers: http.Server[] = [];
    if (o.tls || o.token) {
      const c = makeCertificates(dir);
      ca = c.ca;
      if (o.tls) lines.push("  tls:", `    certificate: ${c.cert}`, `    key: ${c.key}`);
    }
    if (o.basic) {
      writeFileSync(join(dir, "htpasswd"), htpasswd(o.basic.user, o.basic.password));
      lines.push(
        "auth:",
        "  htpasswd:",
        "    realm: provenix-test",
        `    path: ${join(dir, "htpasswd")}`,
      );
    }
    if (o.token) {
      const tokenPort = await freePort();
      servers.push(await tokenIssuer(dir, tokenPort, o.token));
      lines.push(
        "auth:",
        "  token:",
        `    realm: http://127.0.0.1:${tokenPort}/token`,
        "    service: provenix-test-registry",
        "    issuer: provenix-test-issuer",
        `    rootcertbundle: ${join(dir, "ca.pem")}`,
      );
    }
    writeFileSync(join(dir, "config.yml"), lines.join("\n") + "\n");
    const child = spawn("docker-registry", ["serve", join(dir, "config.yml")], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr?.on("data", (b: Buffer) => (stderr += b.toString()));
    const r = new Registry(`127.0.0.1:${port}`, dir, ca, [child], servers);
    t.after(() => r.stop());
    for (let i = 0; i < 100; i++) {
      if (await listening(port)) return r;
      if (child.exitCode !== null) throw new Error(`docker-registry exited: ${stderr}`);
      await sleep(100);
    }
    throw new Error(`docker-registry did not start: ${stderr}`);
  }

  stop(): void {
    for (const p of this.processes) p.kill("SIGKILL");
    for (const s of this.servers) s.close();
  }
}

/** Whether something accepts connections on 127.0.0.1:port. */
export function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    s.on("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.on("error", () => resolve(false));
  });
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString("base64url");

/**
 * A token issuer for distribution's token auth: checks basic credentials and
 * signs an ES256 JWT with the CA-signed certificate in `x5c`, granting what
 * the scope asks for.
 */
async function tokenIssuer(dir: string, port: number, cred: { user: string; password: string }) {
  const key = createPrivateKey(readFileSync(join(dir, "server.key")));
  const certDer = readFileSync(join(dir, "server.pem"), "utf8")
    .replace(/-----[^-]+-----/g, "")
    .replace(/\s/g, "");
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", `http://127.0.0.1:${port}`);
    const auth = req.headers.authorization ?? "";
    const [user, password] = Buffer.from(auth.replace(/^Basic /, ""), "base64")
      .toString()
      .split(":");
    if (user !== cred.user || password !== cred.password) {
      res.writeHead(401).end();
      return;
    }
    const access = url.searchParams.getAll("scope").map((s) => {
      const [type, name, actions] = s.split(":");
      return { type, name, actions: (actions ?? "").split(",") };
    });
    const now = Math.floor(Date.now() / 1000);
    const header = b64url(JSON.stringify({ alg: "ES256", typ: "JWT", x5c: [certDer] }));
    const claims = b64url(
      JSON.stringify({
        iss: "provenix-test-issuer",
        sub: user,
        aud: url.searchParams.get("service"),
        exp: now + 300,
        nbf: now - 10,
        iat: now,
        jti: randomUUID(),
        access,
      }),
    );
    const sig = createSign("SHA256")
      .update(`${header}.${claims}`)
      .sign({ key, dsaEncoding: "ieee-p1363" });
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ token: `${header}.${claims}.${b64url(sig)}` }));
  });
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
  return server;
}

export type Fault =
  | { kind: "status"; status: number }
  | { kind: "hang" }
  | { kind: "drop-after"; bytes: number }
  | { kind: "header"; name: string; value: string }
  | { kind: "body"; body: Buffer; contentType: string };

/**
 * An HTTP proxy in front of a real registry that injects faults into the
 * requests `rule` picks (the others pass through untouched). `hits` counts them.
 */
export class FaultProxy {
  private constructor(
    readonly host: string,
    private readonly counter: { hits: number },
  ) {}

  /** How many requests got a fault. */
  get hits(): number {
    return this.counter.hits;
  }

  static async start(
    t: { after(fn: () => unknown): void },
    upstream: string,
    rule: (req: http.IncomingMessage, n: number) => Fault | undefined,
  ): Promise<FaultProxy> {
    const port = await freePort();
    const counter = { hits: 0 };
    let n = 0;
    const server = http.createServer((req, res) => {
      const fault = rule(req, n++);
      if (fault) counter.hits++;
      if (fault?.kind === "status") {
        req.resume();
        res.writeHead(fault.status, { "content-type": "application/json" });
        res.end(
          JSON.stringify({ errors: [{ code: "INJECTED", message: `injected ${fault.status}` }] }),
        );
        return;
      }
      if (fault?.kind === "hang") {
        req.resume();
        return;
      }
      if (fault?.kind === "body") {
        req.resume();
        res.writeHead(200, {
          "content-type": fault.contentType,
          "content-length": fault.body.length,
        });
        res.end(fault.body);
        return;
      }
      const up = http.request(
        {
          host: "127.0.0.1",
          port: Number(upstream.split(":")[1]),
          method: req.method,
          path: req.url,
          headers: { ...req.headers, host: upstream },
        },
        (ur) => {
          const headers = { ...ur.headers };
          if (fault?.kind === "header") headers[fault.name] = fault.value;
          if (headers.location)
            headers.location = String(headers.location).replace(upstream, `127.0.0.1:${port}`);
          res.writeHead(ur.statusCode ?? 502, headers);
          ur.pipe(res);
        },
      );
      up.on("error", () => res.destroy());
      if (fault?.kind === "drop-after") {
        let seen = 0;
        req.on("data", (c: Buffer) => {
          seen += c.length;
          if (seen >= fault.bytes) {
            up.destroy();
            req.socket.destroy();
          } else up.write(c);
        });
        req.on("end", () => up.end());
      } else req.pipe(up);
    });
    await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
    const sockets = new Set<net.Socket>();
    server.on("connection", (s) => sockets.add(s));
    t.after(() => {
      for (const s of sockets) s.destroy();
      server.close();
    });
    return new FaultProxy(`127.0.0.1:${port}`, counter);
  }
}
