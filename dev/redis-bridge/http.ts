// The REST surface @upstash/redis talks to: POST / (one command), /pipeline, /multi-exec, plus
// Upstash's path style (GET /set/key/value) for curl. Bearer auth everywhere.
import type { IncomingMessage, ServerResponse } from "node:http";
import { readBody } from "../read-body.ts";
import type { Backend } from "./backend.ts";
import { rejectReason } from "./commands.ts";
import { BackendError, ReplyError, type Settled, toJson } from "./reply.ts";

/** Upstash's per-request limit. */
export const MAX_BODY_BYTES = 10 * 1024 * 1024;

class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

async function readText(req: IncomingMessage): Promise<string> {
  const body = await readBody(req, MAX_BODY_BYTES);
  if (body === null) throw new HttpError(413, "ERR max request size exceeded (10 MB)");
  return body.toString("utf8");
}

/** One command from JSON: numbers and booleans become the strings Redis would see. */
function toCommand(value: unknown, where: string): string[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw new HttpError(400, `ERR ${where} must be a non-empty JSON array like ["set","key","value"]`);
  }
  const cmd = value.map((arg, i) => {
    if (typeof arg === "string") return arg;
    if (typeof arg === "number" || typeof arg === "boolean") return String(arg);
    throw new HttpError(400, `ERR ${where}: argument ${i} must be a string, number or boolean, got ${JSON.stringify(arg)}`);
  });
  cmd[0] = (cmd[0] ?? "").toLowerCase();
  return cmd;
}

function parseJson(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch (err) {
    throw new HttpError(400, `ERR failed to parse the request body as JSON: ${(err as Error).message}`);
  }
}

function send(res: ServerResponse, status: number, body: unknown, syncToken: string): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    "upstash-sync-token": syncToken,
  });
  res.end(text);
}

const entry = (s: Settled, base64: boolean) => (s.ok ? { result: toJson(s.value, base64) } : { error: s.error });

/** A node:http request listener serving the Upstash REST API over `backend`. */
export function createHandler(backend: Backend, token: string) {
  let syncCounter = 0;
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const sent = req.headers["upstash-sync-token"];
    const syncToken = typeof sent === "string" && sent !== "" ? sent : String(++syncCounter);
    try {
      const url = new URL(req.url ?? "/", "http://bridge");
      const auth = req.headers.authorization ?? "";
      const given = auth.startsWith("Bearer ") ? auth.slice(7).trim() : url.searchParams.get("_token");
      if (given !== token) {
        req.resume();
        throw new HttpError(401, "Unauthorized: missing or wrong bearer token (Authorization: Bearer <token>)");
      }
      const base64 = String(req.headers["upstash-encoding"] ?? "").toLowerCase() === "base64";
      const body = req.method === "POST" || req.method === "PUT" ? await readText(req) : "";
      const path = url.pathname.replace(/\/+$/, "");

      if (path === "/pipeline" || path === "/multi-exec") {
        if (req.method !== "POST") throw new HttpError(405, `ERR use POST for ${path}`);
        const list = parseJson(body);
        if (!Array.isArray(list) || list.length === 0) {
          throw new HttpError(400, `ERR ${path} expects a non-empty JSON array of commands`);
        }
        const cmds = list.map((c, i) => toCommand(c, `command ${i}`));
        const rejected = cmds.map((c) => rejectReason(c[0] ?? "", c.slice(1)));
        let results: Settled[];
        if (path === "/multi-exec") {
          const reason = rejected.find((r) => r !== null);
          if (reason) throw new HttpError(400, reason);
          results = await backend.transaction(cmds);
        } else {
          const allowed = cmds.filter((_, i) => rejected[i] === null);
          const ran = allowed.length ? await backend.pipeline(allowed) : [];
          results = rejected.map((r) => (r === null ? ran.shift()! : { ok: false, error: r }));
        }
        send(
          res,
          200,
          results.map((r) => entry(r, base64)),
          syncToken,
        );
        return;
      }

      let cmd: string[];
      if (path === "" && req.method === "POST") {
        cmd = toCommand(parseJson(body), "the command");
      } else if (path !== "") {
        // Upstash path style: /set/key/value, a POST body being the last argument.
        const parts = path.slice(1).split("/").map(decodeURIComponent);
        cmd = toCommand(body ? [...parts, body] : parts, "the command");
      } else {
        throw new HttpError(405, `ERR use POST / with a JSON command array, /pipeline or /multi-exec`);
      }
      const reason = rejectReason(cmd[0] ?? "", cmd.slice(1));
      if (reason) throw new HttpError(400, reason);
      const [result] = await backend.pipeline([cmd]);
      if (!result?.ok) throw new HttpError(400, result?.error ?? "ERR no reply");
      send(res, 200, entry(result, base64), syncToken);
    } catch (err) {
      if (err instanceof HttpError) send(res, err.status, { error: err.message }, syncToken);
      else if (err instanceof ReplyError) send(res, 400, { error: err.message }, syncToken);
      else if (err instanceof BackendError) send(res, 503, { error: err.message }, syncToken);
      else send(res, 500, { error: `[celeriac] redis-bridge bug: ${String(err)}` }, syncToken);
    }
  };
}
