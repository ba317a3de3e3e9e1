// Stands in for `postal-mime` in the Worker bundle (the `alias` of wrangler.jsonc). The `resend` SDK
// imports it only to parse inbound (received) mail, which celeriac never reads; aliasing it away
// keeps about a sixth of the bundle out. Anything that does call it gets a clear error.
// biome-ignore lint/complexity/noStaticOnlyClass: the stand-in keeps the shape of postal-mime's default export (a class with a static parse)
export default class PostalMime {
  static parse(): never {
    throw new Error("[celeriac] inbound mail parsing (postal-mime) is not part of the Worker bundle");
  }
}
