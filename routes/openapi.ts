import { Hono } from "hono";
import type { Wiring } from "../src/relay.ts";
import { DOCS_PAGE } from "./docs-page.ts";

/**
 * `GET /openapi.json` (OpenAPI 3.1, from the app's tasks and routes) and `GET /docs`, a page that
 * renders it with no script or style from elsewhere, so it works offline. Neither needs a key:
 * they describe the API, and hold no data.
 */
export const openapi = (wiring: Wiring) =>
  new Hono()
    .get("/openapi.json", async (c) => {
      // Loaded on first use: the JSON Schema converter stays out of every isolate's start-up.
      const { openApiDocument } = await import("../src/openapi.ts");
      return c.json(openApiDocument(wiring.registry.all(), new URL(c.req.url).origin));
    })
    .get("/docs", (c) => {
      c.header("content-security-policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'");
      return c.html(DOCS_PAGE);
    });
