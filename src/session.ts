// The dashboard's session: a signed cookie naming the key that signed in, when it expires and a
// random session id; the CSRF token of the session's forms is derived from that id. No key is ever
// put in the cookie, and the signing key is derived from the configured keys: rotating or revoking
// a key ends every session signed with the old set.
import type { Context } from "hono";
import { deleteCookie, getSignedCookie, setSignedCookie } from "hono/cookie";
import { keyName } from "./auth.ts";
import type { Config } from "./env.ts";
import { base64Url, hmac, same } from "./hmac.ts";

/** How long a dashboard session lasts, seconds. @default 28800 (8 h) */
export const SESSION_TTL_S = 8 * 3600;
/** The cookie's name; it is sent only to `/ui` paths. */
export const SESSION_COOKIE = "celeriac_session";
/** The name a session signed in with `CELERIAC_DASHBOARD_KEY` carries. */
export const DASHBOARD_KEY_NAME = "dashboard";

export interface Session {
  /** Name of the key that signed in (an API key's name, or "dashboard"). */
  keyName: string;
  /** Unix seconds after which the session is refused, whatever the browser keeps. */
  exp: number;
  /** The token every form of this session carries. */
  csrf: string;
}

const encoder = new TextEncoder();
const sign = async (key: string, data: string) => base64Url(await hmac(key, data));

// Derived once per configuration (per isolate on Workers).
const secrets = new WeakMap<Config, Promise<string>>();
const signingSecret = (config: Config) => {
  let s = secrets.get(config);
  if (!s) {
    const material = [...config.apiKeys.map((k) => `${k.name}:${k.key}`), `${DASHBOARD_KEY_NAME}:${config.dashboardKey}`].join("\n");
    secrets.set(config, (s = sign(material, "celeriac ui session v1")));
  }
  return s;
};

/** Which key a sign-in form's `key` is: an API key's name, "dashboard", or undefined. */
export async function signInName(config: Config, presented: string): Promise<string | undefined> {
  const keys = config.dashboardKey ? [...config.apiKeys, { name: DASHBOARD_KEY_NAME, key: config.dashboardKey }] : config.apiKeys;
  return keyName(keys, presented);
}

const cookieOptions = { path: "/ui", httpOnly: true, secure: true, sameSite: "Strict" } as const;

/** Starts a session for `name`: sets the signed cookie. */
export async function startSession(c: Context, config: Config, name: string, now = Date.now()): Promise<void> {
  const sid = base64Url(crypto.getRandomValues(new Uint8Array(18)));
  const exp = Math.floor(now / 1000) + SESSION_TTL_S;
  const value = `${encodeURIComponent(name)}|${exp}|${sid}`;
  await setSignedCookie(c, SESSION_COOKIE, value, await signingSecret(config), { ...cookieOptions, maxAge: SESSION_TTL_S });
}

/**
 * The request's session, or null when there is none, its signature does not hold, it expired, or
 * the key it names is no longer configured.
 */
export async function readSession(c: Context, config: Config, now = Date.now()): Promise<Session | null> {
  const secret = await signingSecret(config);
  const value = await getSignedCookie(c, secret, SESSION_COOKIE);
  if (!value) return null;
  const m = /^([^|]+)\|(\d+)\|([\w-]+)$/.exec(value);
  if (!m) return null;
  const keyName = decodeURIComponent(m[1]!);
  const exp = Number(m[2]);
  if (exp * 1000 <= now) return null;
  const known = config.apiKeys.some((k) => k.name === keyName) || (keyName === DASHBOARD_KEY_NAME && config.dashboardKey !== "");
  if (!known) return null;
  return { keyName, exp, csrf: await sign(secret, `csrf|${m[3]}`) };
}

/** Whether a submitted form token is the session's (compared without an early exit). */
export const csrfMatches = (session: Session, token: unknown) =>
  typeof token === "string" && same(encoder.encode(token), encoder.encode(session.csrf));

/** Ends the session in this browser. */
export const endSession = (c: Context) => deleteCookie(c, SESSION_COOKIE, cookieOptions);
