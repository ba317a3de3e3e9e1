import { createApp } from "./app.ts";

/** Cloudflare Workers entry: bindings arrive per request as the fetch handler's env. */
export default createApp();
