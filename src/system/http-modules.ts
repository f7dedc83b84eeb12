// node:http and node:https through require. An ESM import of a built-in reads every
// one of its exports to make the module namespace, and one of node:http's loads
// undici: 25 ms of the start-up of every command that merely links this code.
import { createRequire } from "node:module";
import type * as Http from "node:http";
import type * as Https from "node:https";

const require = createRequire(import.meta.url);

export const http = require("node:http") as typeof Http;
export const https = require("node:https") as typeof Https;
