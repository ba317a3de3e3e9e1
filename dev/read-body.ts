// Request bodies for the dev stand-ins (Node only).
import type { IncomingMessage } from "node:http";

/**
 * Reads a request body of at most `maxBytes` bytes; null when it is larger. Past the limit the
 * rest is read and dropped, so the client gets the stand-in's 413 rather than a reset connection.
 */
export function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer | null> {
  return new Promise((done, failed) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size <= maxBytes) chunks.push(c);
    });
    req.on("end", () => done(size > maxBytes ? null : Buffer.concat(chunks)));
    req.on("error", failed);
  });
}
