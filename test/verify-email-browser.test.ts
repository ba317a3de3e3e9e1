// The verification-code flow as a person meets it: the demo page (examples/verify-email, on the
// stack's static site, an origin of its own) in real Chromium, calling the Worker in workerd.
// Send a code, read it from the mail sink, enter it, see "verified", and verify the token with a
// standard JWT library; from a disallowed origin the call is blocked; past the per-address limit
// the page shows the 429 message.
import { jwtVerify } from "jose";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, mailbox, stack, until } from "./helpers/api.ts";
import { launchBrowser } from "./helpers/browser.ts";

const tag = Math.random().toString(36).slice(2, 8);
let browser: Browser;

beforeAll(async () => {
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
});

async function demo(origin = stack().site, query = ""): Promise<Page> {
  const page = await browser.newPage();
  await page.goto(`${origin}/verify-email/${query}`);
  return page;
}
const status = (page: Page) => page.locator("#status");
const codeIn = async (address: string) =>
  until(`a code mailed to ${address}`, async () => {
    const [mail] = await mailbox.to(address);
    return mail ? /\b(\d{6})\b/.exec(mail.subject)?.[1] : undefined;
  });

describe("the verify-email demo page in Chromium", () => {
  it("sends a code, takes it back, says verified, and hands over a token a JWT library accepts", async () => {
    const address = `reader-${tag}@celeriac.dev`;
    const page = await demo();
    await page.fill("#email", address);
    await page.click("#send");
    await expect.poll(() => status(page).textContent()).toContain("a code is on its way");
    const code = await codeIn(address);
    await page.fill("#code", code);
    await page.click("#verify");
    await expect.poll(() => status(page).textContent()).toContain("Verified");
    const token = (await page.locator("#token").textContent())!;
    const { payload, protectedHeader } = await jwtVerify(token, new TextEncoder().encode(stack().env.VERIFICATION_TOKEN_SECRET!), {
      algorithms: ["HS256"],
    });
    expect(protectedHeader.alg).toBe("HS256");
    expect(payload).toMatchObject({ sub: address, purpose: "sign-in" });
    expect(payload.exp! - payload.iat!).toBeGreaterThan(0);

    // The code worked once: a second try says so.
    await page.click("#verify");
    await expect.poll(() => status(page).textContent()).toMatch(/already been used/i);
    await page.close();
  });

  it("sends what a person types only to the celeriac it was served with, whatever its URL says", async () => {
    const elsewhere: string[] = [];
    const page = await demo(stack().site, "?api=http://127.0.0.1:9");
    page.on(
      "request",
      (r) => void (new URL(r.url()).origin !== stack().worker && new URL(r.url()).origin !== stack().site && elsewhere.push(r.url())),
    );
    await page.fill("#email", `linked-${tag}@celeriac.dev`);
    await page.click("#send");
    await expect.poll(() => status(page).textContent()).toContain("a code is on its way");
    expect(elsewhere).toEqual([]);
    await page.close();
  });

  it("is blocked from an origin that is not allowed, and nothing is enqueued", async () => {
    // The same server under another host name is another origin, not on the allow-list.
    const other = stack().site.replace("127.0.0.1", "localhost");
    const address = `stranger-${tag}@celeriac.dev`;
    const page = await demo(other);
    await page.fill("#email", address);
    await page.click("#send");
    await expect.poll(() => status(page).textContent()).toContain("could not be reached from this page");
    const blocked = await page.evaluate(async (api) => {
      try {
        await fetch(`${api}/v1/public/verification`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
        return "answered";
      } catch (err) {
        return (err as Error).name;
      }
    }, stack().worker);
    expect(blocked).toBe("TypeError");
    const listed = await call("GET", "/v1/tasks?task=verification&limit=100");
    expect(listed.body.tasks.filter((t: { payload?: { email?: string } }) => t.payload?.email === address)).toEqual([]);
    expect(await mailbox.to(address)).toEqual([]);
    await page.close();
  });

  it("shows the 429 message once the address has asked too often", async () => {
    const address = `eager-${tag}@celeriac.dev`;
    const page = await demo();
    await page.fill("#email", address);
    // Three requests per address per 10 minutes; repeats inside the cooldown mail nothing new.
    for (let i = 0; i < 3; i++) {
      await page.click("#send");
      await expect.poll(() => status(page).textContent()).toContain("a code is on its way");
      await page.evaluate(() => (document.getElementById("status")!.textContent = ""));
    }
    await page.click("#send");
    await expect.poll(() => status(page).textContent()).toMatch(/^Too many requests: please wait \d+ seconds/);
    await until("the one code mail", async () => ((await mailbox.to(address)).length === 1 ? true : undefined));
    // It was the address's limit, not the page's: another address from the same page still passes.
    await page.evaluate(() => (document.getElementById("status")!.textContent = ""));
    await page.fill("#email", `patient-${tag}@celeriac.dev`);
    await page.click("#send");
    await expect.poll(() => status(page).textContent()).toContain("a code is on its way");
    await page.close();
  });
});
