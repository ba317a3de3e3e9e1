// /openapi.json: a valid OpenAPI 3.1 document (checked by an OpenAPI validator library), naming
// every task's payload schema and every route the app serves; served by the Worker in workerd.
import { Validator } from "@seriousme/openapi-schema-validator";
import { describe, expect, it } from "vitest";
import { createApp } from "../src/app.ts";
import { EnqueueBody } from "../src/options.ts";
import { tasks as builtIn } from "../tasks/index.ts";
import { call, settle, stack } from "./helpers/api.ts";

const app = createApp();
const spec = async () => (await app.request("http://celeriac.test/openapi.json")).json();

describe("/openapi.json", () => {
  it("is a valid OpenAPI 3.1 document whose every $ref resolves", async () => {
    const doc = await spec();
    expect(doc.openapi).toBe("3.1.0");
    const result = await new Validator().validate(doc);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    const refs = JSON.stringify(doc).match(/"#\/components\/schemas\/[^"]+"/g) ?? [];
    for (const r of new Set(refs)) expect(doc.components.schemas, r).toHaveProperty([JSON.parse(r).split("/").pop()]);
  });

  it("names every task's payload schema, derived from its valibot schema", async () => {
    const doc = await spec();
    // An internal task (the callbacks') is not the callers' to enqueue: no route, no schema.
    for (const t of builtIn.filter((t) => t.internal)) {
      expect(doc.paths[`/v1/tasks/${t.name}`], t.name).toBeUndefined();
      expect(doc.components.schemas[`${t.name}.payload`], t.name).toBeUndefined();
    }
    expect(builtIn.some((t) => t.internal)).toBe(true);
    for (const t of builtIn.filter((t) => !t.internal)) {
      const op = doc.paths[`/v1/tasks/${t.name}`]?.post;
      expect(op, t.name).toBeDefined();
      expect(op.requestBody.content["application/json"].schema.properties.payload).toEqual({
        $ref: `#/components/schemas/${t.name}.payload`,
      });
    }
    // A public task also has its browser route, whose body is the payload itself.
    expect(doc.paths["/v1/public/verification"].post.requestBody.content["application/json"].schema).toEqual({
      $ref: "#/components/schemas/verification.payload",
    });
    expect(doc.paths["/v1/public/send-email"]).toBeUndefined();
    const email = doc.components.schemas["send-email.payload"];
    expect(email).toMatchObject({ type: "object", required: ["to", "subject"], additionalProperties: false });
    expect(Object.keys(email.properties)).toEqual(expect.arrayContaining(["from", "to", "cc", "subject", "html", "text", "tags"]));
    expect(doc.servers).toEqual([{ url: "http://celeriac.test" }]);
    // The enqueue options are the route's own schema's.
    expect(Object.keys(doc.components.schemas.EnqueueOptions.properties).sort()).toEqual(
      Object.keys(EnqueueBody.entries)
        .filter((k) => k !== "payload")
        .sort(),
    );
  });

  it("documents every route the app serves (QStash's signed delivery routes, CORS preflights and the /ui dashboard aside)", async () => {
    const doc = await spec();
    const served = app.routes
      // /ui is the dashboard for people (README, Dashboard), not part of the API.
      .filter((r) => r.method !== "ALL" && r.method !== "OPTIONS" && !r.path.startsWith("/qstash/") && !r.path.startsWith("/ui"))
      .map((r) => `${r.method.toLowerCase()} ${r.path.replace(/:(\w+)(\{[^}]*\})?/g, "{$1}")}`);
    const documented = Object.entries(doc.paths).flatMap(([p, item]) => Object.keys(item as object).map((m) => `${m} ${p}`));
    const generic = documented.map((d) => d.replace(/^post \/v1\/(tasks|public)\/[a-z0-9-]+$/, "post /v1/$1/{name}"));
    expect(new Set(served).size).toBeGreaterThan(10);
    for (const route of new Set(served)) expect(generic.includes(route) || documented.includes(route), route).toBe(true);
  });

  it("describes what the Worker really answers (in workerd), and /docs is a page of its own", async () => {
    const live = await fetch(`${stack().worker}/openapi.json`);
    expect(live.status).toBe(200);
    const doc = await live.json();
    expect(doc.servers[0].url).toBe(stack().worker);
    const queued = await call("POST", "/v1/tasks/send-email", { payload: { to: "spec@celeriac.dev", subject: "spec", text: "hi" } });
    const record = await settle(queued.body.id);
    for (const [name, body] of [
      ["Enqueued", queued.body],
      ["TaskRecord", record],
    ] as const) {
      const schema = doc.components.schemas[name];
      for (const k of schema.required) expect(body, `${name}.${k}`).toHaveProperty([k]);
      for (const k of Object.keys(body)) expect(schema.properties, `${name}.${k} is documented`).toHaveProperty([k]);
      expect(schema.properties.state.enum).toContain(body.state);
    }
    const page = await fetch(`${stack().worker}/docs`);
    expect(page.headers.get("content-type")).toMatch(/text\/html/);
    const html = await page.text();
    expect(html).toContain('fetch("/openapi.json")');
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href="http/);
  });
});
