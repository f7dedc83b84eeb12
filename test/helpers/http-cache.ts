// Binary caches over HTTP on 127.0.0.1 for a test: Debian's nginx with WebDAV PUT
// (uploads, as a cache behind `nix copy --to http://` or provenix publish), and
// Python's http.server (a read-only cache of a directory).
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { tempDir } from "./nix.js";
import { freePort, listening } from "./registry.js";

/** Start a server process, stopped after the test, once it listens on `port`. */
async function serve(
  t: { after(fn: () => unknown): void },
  command: string,
  args: string[],
  port: number,
  root: string,
): Promise<HttpCache> {
  const child: ChildProcess = spawn(command, args, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (b: Buffer) => (stderr += b.toString()));
  const stop = () => child.kill("SIGKILL");
  t.after(stop);
  for (let i = 0; i < 100; i++) {
    if (await listening(port)) return { url: `http://127.0.0.1:${port}`, root, stop };
    if (child.exitCode !== null) throw new Error(`${command} exited: ${stderr}`);
    await sleep(100);
  }
  throw new Error(`${command} did not start: ${stderr}`);
}

export interface HttpCache {
  readonly url: string;
  readonly root: string;
  stop(): void;
}

/** nginx serving `root` with PUT (WebDAV, creating directories) on 127.0.0.1. */
export async function nginxCache(
  t: { after(fn: () => unknown): void },
  root: string,
): Promise<HttpCache> {
  const dir = tempDir("provenix-nginx-");
  const port = await freePort();
  mkdirSync(join(dir, "tmp"));
  writeFileSync(
    join(dir, "nginx.conf"),
    `daemon off;
worker_processes 1;
user root;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${dir}/tmp;
  proxy_temp_path ${dir}/tmp; fastcgi_temp_path ${dir}/tmp; uwsgi_temp_path ${dir}/tmp; scgi_temp_path ${dir}/tmp;
  server {
    listen 127.0.0.1:${port};
    root ${root};
    client_max_body_size 256m;
    dav_methods PUT;
    create_full_put_path on;
    dav_access user:rw group:r all:r;
  }
}
`,
  );
  return serve(t, "nginx", ["-c", join(dir, "nginx.conf"), "-p", dir], port, root);
}

/** Python's http.server: a read-only cache of `root`. */
export async function staticCache(
  t: { after(fn: () => unknown): void },
  root: string,
): Promise<HttpCache> {
  const port = await freePort();
  const args = ["-m", "http.server", String(port), "--bind", "127.0.0.1", "--directory", root];
  return serve(t, "/usr/bin/python3", args, port, root);
}
