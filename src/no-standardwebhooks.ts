// Stands in for `standardwebhooks` in the Worker bundle (the `alias` of wrangler.jsonc), as
// src/no-postal-mime.ts does for `postal-mime`. The `resend` SDK imports it only for
// `resend.webhooks.verify`, which celeriac never calls: it verifies Resend's events, and signs
// its own webhooks, with src/webhook-signature.ts (Web Crypto). Aliasing the package away keeps
// its pure-JS SHA-256 and base64 (about 12 KiB) out. Anything that does call it gets a clear error.
export class Webhook {
  constructor() {
    throw new Error("[celeriac] the standardwebhooks package is not part of the Worker bundle: use src/webhook-signature.ts");
  }
}
