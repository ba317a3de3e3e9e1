import { createApp } from "./app.ts";

/**
 * Cloudflare Workers entry: bindings arrive per request (and per cron event) as the handler's env.
 * `Env` is generated from wrangler.jsonc by `npm run types` (worker-configuration.d.ts).
 */
export default createApp() satisfies ExportedHandler<Env>;
