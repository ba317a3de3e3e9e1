// The webhook receiver recipe of the README, verbatim from its import on (the recipe test checks
// that the README still shows exactly this code, and runs it).
import { Webhook } from "standardwebhooks";

/** Receives celeriac's webhooks of any content type (JSON, form, text) as a fetch handler. */
export function celeriacReceiver(secret: string, handle: (body: string, request: Request) => Promise<void>) {
  const webhook = new Webhook(secret);
  return async (request: Request): Promise<Response> => {
    const body = await request.text(); // the raw body, exactly as sent
    try {
      // jsonParse: false checks the signature only; by default the library also parses the body as JSON.
      webhook.verify(body, Object.fromEntries(request.headers), { jsonParse: false });
    } catch {
      return new Response("invalid signature", { status: 401 });
    }
    // Parse `body` as its content-type says. webhook-id is the same on every retry: drop repeats.
    await handle(body, request);
    return new Response(null, { status: 204 });
  };
}
