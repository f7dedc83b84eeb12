import { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import type { IncomingHttpHeaders } from "node:http";
import { http, https } from "./http-modules.js";
import { MAX_MANIFEST_BYTES, MANIFEST_TYPES, OciError, ociDigest } from "../oci/index.js";

// An OCI distribution-spec client: blobs (monolithic and chunked uploads,
// existence checks, cross-repository mounts), manifests, referrers; anonymous,
// basic and bearer-token auth; TLS with a custom CA; plain HTTP only when asked.

export interface Credentials {
  readonly username: string;
  readonly password: string;
}

export interface RegistryOptions {
  /** host[:port] */
  readonly registry: string;
  /** Speak plain HTTP (only when the user asked for it). */
  readonly plainHttp: boolean;
  /** Extra CA certificates (PEM) to trust for TLS. */
  readonly ca?: Buffer;
  readonly credentials?: Credentials;
  readonly timeoutMs: number;
  /** Attempts for requests that fail with 5xx or a dropped connection. */
  readonly attempts: number;
  /** Blobs up to this size go in one PUT (measured fastest); larger ones in chunks. */
  readonly monolithicMax: number;
  /** The size of each PATCH of a chunked upload. */
  readonly chunkSize: number;
}

interface Response {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

type Body = Buffer | (() => Readable) | undefined;

const GIVE_CREDENTIALS =
  "(give credentials: --username with --password-stdin, PROVENIX_REGISTRY_USERNAME/PASSWORD, or Docker's config.json)";

/** One attempt of an HTTP request; connection problems become UNREACHABLE. */
function send(
  url: URL,
  method: string,
  headers: Record<string, string>,
  body: Body,
  o: RegistryOptions,
  maxBody: number,
): Promise<Response> {
  return new Promise((resolve, reject) => {
    const lib = url.protocol === "https:" ? https : http;
    const req = lib.request(
      url,
      { method, headers, ...(o.ca ? { ca: o.ca } : {}), timeout: o.timeoutMs },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (c: Buffer) => {
          size += c.length;
          if (size > maxBody) {
            req.destroy();
            reject(
              new OciError(
                "TOO_LARGE",
                `${method} ${url.pathname}: response exceeds ${maxBody} bytes`,
              ),
            );
            return;
          }
          chunks.push(c);
        });
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks),
          }),
        );
        res.on("error", (e) => reject(unreachable(url, e)));
      },
    );
    req.on("timeout", () => req.destroy(new Error(`timed out after ${o.timeoutMs} ms`)));
    req.on("error", (e) => reject(unreachable(url, e)));
    if (body === undefined) req.end();
    else if (Buffer.isBuffer(body)) req.end(body);
    else {
      const stream = body();
      stream.on("error", (e) => req.destroy(e));
      stream.pipe(req);
    }
  });
}

function unreachable(url: URL, e: Error): OciError {
  if (e instanceof OciError) return e;
  const code = (e as NodeJS.ErrnoException).code;
  return new OciError(
    "UNREACHABLE",
    `cannot talk to ${url.host}: ${code ?? e.message}${code === "DEPTH_ZERO_SELF_SIGNED_CERT" || code === "SELF_SIGNED_CERT_IN_CHAIN" || code === "UNABLE_TO_VERIFY_LEAF_SIGNATURE" ? " (give the registry's CA with --ca-file)" : ""}`,
    { cause: e },
  );
}

function basicAuth({ username, password }: Credentials): Record<string, string> {
  return { authorization: `Basic ${Buffer.from(`${username}:${password}`).toString("base64")}` };
}

/** Parse `WWW-Authenticate: Bearer realm="...",service="...",scope="..."`. */
export function parseChallenge(header: string): { scheme: string; params: Record<string, string> } {
  const m = /^(\w+)\s*(.*)$/.exec(header.trim());
  const params: Record<string, string> = {};
  for (const p of (m?.[2] ?? "").matchAll(/(\w+)="([^"]*)"/g)) params[p[1] ?? ""] = p[2] ?? "";
  return { scheme: (m?.[1] ?? "").toLowerCase(), params };
}

export class RegistryClient {
  private readonly base: string;
  private readonly tokens = new Map<string, string>();
  private useBasic = false;

  constructor(readonly o: RegistryOptions) {
    this.base = `${o.plainHttp ? "http" : "https"}://${o.registry}`;
  }

  private authHeader(scope: string): Record<string, string> {
    const token = this.tokens.get(scope);
    if (token) return { authorization: `Bearer ${token}` };
    if (this.useBasic && this.o.credentials) return basicAuth(this.o.credentials);
    return {};
  }

  /** The bearer-token flow (distribution "token authentication"): ask the realm for a token. */
  private async fetchToken(params: Record<string, string>, scope: string): Promise<void> {
    const realm = params.realm;
    if (!realm)
      throw new OciError("UNAUTHORIZED", `${this.o.registry}: bearer challenge without realm`);
    const url = new URL(realm);
    if (params.service) url.searchParams.set("service", params.service);
    url.searchParams.set("scope", params.scope ?? scope);
    const headers = this.o.credentials ? basicAuth(this.o.credentials) : {};
    const r = await send(url, "GET", headers, undefined, this.o, 1 << 20);
    if (r.status === 401 || r.status === 403) {
      throw new OciError(
        "UNAUTHORIZED",
        this.o.credentials
          ? `${url.host} refused a token for ${scope}: check the credentials`
          : `${this.o.registry}: authentication required ${GIVE_CREDENTIALS}`,
      );
    }
    if (r.status !== 200)
      throw new OciError("REGISTRY", `token endpoint ${url.host} answered ${r.status}`);
    const j = JSON.parse(r.body.toString("utf8")) as { token?: string; access_token?: string };
    const token = j.token ?? j.access_token;
    if (!token) throw new OciError("REGISTRY", `token endpoint ${url.host} gave no token`);
    this.tokens.set(scope, token);
  }

  /**
   * A request with auth and retries: 401 triggers the challenge's flow once;
   * 5xx, 429 and dropped connections are retried with backoff when the body can be replayed.
   */
  async request(
    method: string,
    path: string,
    opts: {
      scope: string;
      headers?: Record<string, string>;
      body?: Body;
      maxBody?: number;
      url?: string;
      /** false: one attempt (a request inside an upload session, which cannot be replayed). */
      retry?: boolean;
    },
  ): Promise<Response> {
    const attempts = opts.retry === false ? 1 : this.o.attempts;
    const url = new URL(opts.url ?? path, this.base);
    let authTried = false;
    for (let attempt = 1; ; attempt++) {
      const headers = { ...opts.headers, ...this.authHeader(opts.scope) };
      let r: Response;
      try {
        r = await send(url, method, headers, opts.body, this.o, opts.maxBody ?? 1 << 24);
      } catch (e) {
        if (e instanceof OciError && e.code === "UNREACHABLE" && attempt < attempts) {
          await sleep(250 * 2 ** attempt);
          continue;
        }
        throw e;
      }
      if (r.status === 401 && !authTried) {
        authTried = true;
        const c = parseChallenge(String(r.headers["www-authenticate"] ?? ""));
        if (c.scheme === "bearer") {
          await this.fetchToken(c.params, opts.scope);
          continue;
        }
        if (c.scheme === "basic" && this.o.credentials && !this.useBasic) {
          this.useBasic = true;
          continue;
        }
      }
      if (r.status === 401) {
        throw new OciError(
          "UNAUTHORIZED",
          `${this.o.registry}: ${method} ${url.pathname}: authentication required${this.o.credentials ? " (the credentials were refused)" : ` ${GIVE_CREDENTIALS}`}`,
        );
      }
      if (r.status === 403) {
        throw new OciError(
          "DENIED",
          `${this.o.registry}: ${method} ${url.pathname}: access denied`,
        );
      }
      if ((r.status >= 500 || r.status === 429) && attempt < attempts) {
        await sleep(250 * 2 ** attempt);
        continue;
      }
      if (r.status >= 500) {
        throw new OciError(
          "SERVER",
          `${this.o.registry}: ${method} ${url.pathname}: server error ${r.status} after ${attempt} attempts`,
        );
      }
      return r;
    }
  }

  private fail(r: Response, what: string): never {
    let detail = "";
    try {
      const j = JSON.parse(r.body.toString("utf8")) as {
        errors?: { code?: string; message?: string }[];
      };
      const e = j.errors?.[0];
      if (e) detail = `: ${e.code ?? ""} ${e.message ?? ""}`.trimEnd();
    } catch {
      // not a distribution error body
    }
    if (r.status === 404)
      throw new OciError("NOT_FOUND", `${this.o.registry}: ${what}: not found${detail}`);
    if (/DIGEST_INVALID/.test(detail))
      throw new OciError("DIGEST_MISMATCH", `${this.o.registry}: ${what}${detail}`);
    throw new OciError("REGISTRY", `${this.o.registry}: ${what}: HTTP ${r.status}${detail}`);
  }

  private scope(repo: string, push: boolean): string {
    return `repository:${repo}:${push ? "pull,push" : "pull"}`;
  }

  async hasBlob(repo: string, digest: string): Promise<boolean> {
    const r = await this.request("HEAD", `/v2/${repo}/blobs/${digest}`, {
      scope: this.scope(repo, false),
    });
    if (r.status === 200) return true;
    if (r.status === 404) return false;
    this.fail(r, `HEAD blob ${digest}`);
  }

  /**
   * Upload a blob unless the registry has it: mounted from `mountFrom` when
   * possible, else in one PUT, or in PATCH chunks above the chunk size.
   */
  async pushBlob(
    repo: string,
    blob: { digest: string; size: number; open: () => Readable },
    mountFrom?: string,
  ): Promise<"exists" | "mounted" | "uploaded"> {
    if (await this.hasBlob(repo, blob.digest)) return "exists";
    // A dropped connection or a server error mid-upload spoils the session: start a new one.
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.uploadSession(repo, blob, mountFrom);
      } catch (e) {
        const again = e instanceof OciError && (e.code === "UNREACHABLE" || e.code === "SERVER");
        if (!again || attempt >= this.o.attempts) throw e;
        await sleep(250 * 2 ** attempt);
      }
    }
  }

  private async uploadSession(
    repo: string,
    blob: { digest: string; size: number; open: () => Readable },
    mountFrom?: string,
  ): Promise<"mounted" | "uploaded"> {
    const scope = this.scope(repo, true);
    const start = mountFrom
      ? `/v2/${repo}/blobs/uploads/?mount=${encodeURIComponent(blob.digest)}&from=${encodeURIComponent(mountFrom)}`
      : `/v2/${repo}/blobs/uploads/`;
    let r = await this.request("POST", start, { scope, headers: { "content-length": "0" } });
    if (r.status === 201 && mountFrom) return "mounted";
    if (r.status !== 202) this.fail(r, `start upload of ${blob.digest}`);
    let location = String(r.headers.location ?? "");
    const withDigest = (loc: string) => {
      const u = new URL(loc, this.base);
      u.searchParams.set("digest", blob.digest);
      return u.toString();
    };
    if (blob.size <= this.o.monolithicMax) {
      r = await this.request("PUT", "", {
        url: withDigest(location),
        scope,
        headers: {
          "content-type": "application/octet-stream",
          "content-length": String(blob.size),
        },
        body: blob.open,
        retry: false,
      });
      if (r.status !== 201) this.fail(r, `upload of ${blob.digest}`);
      return "uploaded";
    }
    // Chunked: PATCH with Content-Range, each chunk read from the blob's stream.
    let offset = 0;
    for await (const chunk of chunks(blob.open(), this.o.chunkSize)) {
      r = await this.request("PATCH", "", {
        url: new URL(location, this.base).toString(),
        scope,
        headers: {
          "content-type": "application/octet-stream",
          "content-length": String(chunk.length),
          "content-range": `${offset}-${offset + chunk.length - 1}`,
        },
        body: chunk,
        retry: false,
      });
      if (r.status !== 202) this.fail(r, `upload chunk at ${offset} of ${blob.digest}`);
      location = String(r.headers.location ?? location);
      offset += chunk.length;
    }
    if (offset !== blob.size) {
      throw new OciError(
        "MALFORMED_ARCHIVE",
        `${blob.digest}: read ${offset} bytes, expected ${blob.size}`,
      );
    }
    r = await this.request("PUT", "", {
      url: withDigest(location),
      scope,
      headers: { "content-length": "0" },
      retry: false,
    });
    if (r.status !== 201) this.fail(r, `finish upload of ${blob.digest}`);
    return "uploaded";
  }

  async getBlob(repo: string, digest: string, maxBytes: number): Promise<Buffer> {
    const r = await this.request("GET", `/v2/${repo}/blobs/${digest}`, {
      scope: this.scope(repo, false),
      maxBody: maxBytes,
    });
    if (r.status !== 200) this.fail(r, `blob ${digest}`);
    if (ociDigest(r.body) !== digest) {
      throw new OciError(
        "DIGEST_MISMATCH",
        `${this.o.registry}: blob ${digest} does not match its bytes`,
      );
    }
    return r.body;
  }

  /** PUT a manifest; the registry's Docker-Content-Digest must be the digest of our bytes. */
  async putManifest(
    repo: string,
    reference: string,
    mediaType: string,
    bytes: Buffer,
  ): Promise<string> {
    if (bytes.length > MAX_MANIFEST_BYTES) {
      throw new OciError(
        "TOO_LARGE",
        `manifest of ${bytes.length} bytes is over the ${MAX_MANIFEST_BYTES}-byte limit`,
      );
    }
    const digest = ociDigest(bytes);
    const r = await this.request("PUT", `/v2/${repo}/manifests/${reference}`, {
      scope: this.scope(repo, true),
      headers: { "content-type": mediaType },
      body: bytes,
    });
    if (r.status !== 201) this.fail(r, `PUT manifest ${reference}`);
    const echoed = r.headers["docker-content-digest"];
    if (typeof echoed === "string" && echoed !== digest) {
      throw new OciError(
        "DIGEST_MISMATCH",
        `${this.o.registry} stored manifest ${reference} as ${echoed}, we sent ${digest}`,
      );
    }
    return digest;
  }

  /** GET a manifest (or index); undefined when the registry has none under that reference. */
  async getManifest(
    repo: string,
    reference: string,
  ): Promise<{ bytes: Buffer; mediaType: string; digest: string } | undefined> {
    const r = await this.request("GET", `/v2/${repo}/manifests/${reference}`, {
      scope: this.scope(repo, false),
      headers: { accept: MANIFEST_TYPES.join(", ") },
      maxBody: MAX_MANIFEST_BYTES,
    });
    if (r.status === 404) return undefined;
    if (r.status !== 200) this.fail(r, `manifest ${reference}`);
    const digest = ociDigest(r.body);
    if (reference.startsWith("sha256:") && digest !== reference) {
      throw new OciError(
        "DIGEST_MISMATCH",
        `${this.o.registry}: manifest ${reference} does not match its bytes (${digest})`,
      );
    }
    return {
      bytes: r.body,
      mediaType: String(r.headers["content-type"] ?? "").split(";")[0] ?? "",
      digest,
    };
  }

  /** The referrers API (distribution-spec 1.1); undefined when the registry does not offer it. */
  async referrers(repo: string, digest: string): Promise<Buffer | undefined> {
    const r = await this.request("GET", `/v2/${repo}/referrers/${digest}`, {
      scope: this.scope(repo, false),
      maxBody: MAX_MANIFEST_BYTES,
    });
    if (r.status === 404) return undefined;
    if (r.status !== 200) this.fail(r, `referrers of ${digest}`);
    return String(r.headers["content-type"] ?? "").startsWith(
      "application/vnd.oci.image.index.v1+json",
    )
      ? r.body
      : undefined;
  }
}

/** Re-chunk a stream into buffers of `size` bytes (the last one shorter). */
async function* chunks(stream: Readable, size: number): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  let have = 0;
  for await (const c of stream as AsyncIterable<Buffer>) {
    pending.push(c);
    have += c.length;
    while (have >= size) {
      const all = Buffer.concat(pending);
      yield all.subarray(0, size);
      pending = [all.subarray(size)];
      have -= size;
    }
  }
  if (have > 0) yield Buffer.concat(pending);
}
