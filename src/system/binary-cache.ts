// A Nix binary cache as provenix talks to it: file:// directories (as `nix copy --to
// file://` writes them) and HTTP(S) caches (GET; PUT for uploads, as Nix's own http
// store does, e.g. nginx with WebDAV). Only the files of the attestation layout
// (src/cache) and narinfos are read or written; NARs are never touched.
import { randomBytes } from "node:crypto";
import { readFile, rename, rm, writeFile } from "node:fs/promises";
import { makeDirs } from "./make-dirs.js";
import { dirname, join } from "node:path";
import { http, https } from "./http-modules.js";
import { CacheError } from "../cache/index.js";

export interface BinaryCache {
  /** The cache's URL as given, without a trailing slash. */
  readonly url: string;
  /** A file of the cache, or undefined when it has none (404, no such file). */
  get(path: string): Promise<Buffer | undefined>;
  /** Write a file, whole: a reader sees the old bytes or the new, never half. */
  put(path: string, bytes: Buffer, contentType: string): Promise<void>;
  /** Let go of kept-alive connections. */
  close?(): void;
}

const MAX_BYTES = 64 << 20;

export function openBinaryCache(url: string, o: { timeoutMs?: number } = {}): BinaryCache {
  const base = url.replace(/\/+$/, "");
  if (base.startsWith("file://")) return fileCache(base);
  if (/^https?:\/\//.test(base)) return httpCache(base, o.timeoutMs ?? 30_000);
  throw new CacheError("BAD_URL", `'${url}' is not a file://, http:// or https:// binary cache`);
}

function fileCache(url: string): BinaryCache {
  const root = decodeURIComponent(new URL(url).pathname);
  const inside = (path: string) => {
    if (path.split("/").includes("..")) throw new CacheError("BAD_URL", `bad cache path ${path}`);
    return join(root, path);
  };
  return {
    url,
    async get(path) {
      try {
        return await readFile(inside(path));
      } catch (cause) {
        const code = (cause as NodeJS.ErrnoException).code;
        if (code === "ENOENT") return undefined;
        throw new CacheError("SERVER", `cannot read ${url}/${path}: ${code ?? String(cause)}`, {
          cause,
        });
      }
    },
    async put(path, bytes) {
      const file = inside(path);
      const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
      try {
        makeDirs(dirname(file));
        await writeFile(tmp, bytes, { mode: 0o644 });
        await rename(tmp, file);
      } catch (cause) {
        await rm(tmp, { force: true });
        const code = (cause as NodeJS.ErrnoException).code;
        throw new CacheError(
          "WRITE_FAILED",
          `cannot write ${url}/${path}: ${code ?? String(cause)}`,
          { cause },
        );
      }
    },
  };
}

/**
 * HTTP(S) with node:http and a keep-alive agent: a closure is thousands of small
 * requests, and fetch() costs several times more CPU per request.
 */
function httpCache(url: string, timeoutMs: number): BinaryCache {
  const base = new URL(url);
  const client = base.protocol === "https:" ? https : http;
  const agent = new client.Agent({ keepAlive: true, maxSockets: 32 });
  const request = (method: "GET" | "PUT", path: string, body?: Buffer, type?: string) => {
    const target = `${url}/${path}`;
    return new Promise<{ status: number; body: Buffer }>((resolve, reject) => {
      const fail = (why: string, cause?: unknown) =>
        reject(new CacheError("UNREACHABLE", `${method} ${target}: ${why}`, { cause }));
      const req = client.request(
        target,
        {
          method,
          agent,
          headers: body
            ? { "content-type": type ?? "application/octet-stream", "content-length": body.length }
            : {},
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on("data", (c: Buffer) => {
            size += c.length;
            if (size > MAX_BYTES) {
              req.destroy();
              reject(new CacheError("MALFORMED", `${target} is larger than ${MAX_BYTES} bytes`));
            } else chunks.push(c);
          });
          res.on("end", () =>
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }),
          );
          res.on("error", (e) => fail(e.message, e));
        },
      );
      req.setTimeout(timeoutMs, () => {
        req.destroy();
        fail(`no answer within ${timeoutMs / 1000} s`);
      });
      req.on("error", (e: NodeJS.ErrnoException) => fail(e.code ?? e.message, e));
      req.end(body);
    });
  };
  return {
    url,
    async get(path) {
      const r = await request("GET", path);
      if (r.status === 404 || r.status === 410) return undefined;
      if (r.status < 200 || r.status > 299) {
        throw new CacheError("SERVER", `GET ${url}/${path}: HTTP ${r.status}`);
      }
      return r.body;
    },
    async put(path, bytes, contentType) {
      const r = await request("PUT", path, bytes, contentType);
      if (r.status < 200 || r.status > 299) {
        throw new CacheError("WRITE_FAILED", `PUT ${url}/${path}: HTTP ${r.status}`);
      }
    },
    close() {
      agent.destroy();
    },
  };
}
