/** Broker conformance: schedules through the official client, the trigger control endpoint, scaled cron. */
import type { Client } from "@upstash/qstash";
import { describe, expect, it } from "vitest";
import type { Broker } from "../dev/broker/index.ts";
import { type TestReceiver, useBroker } from "./helpers/broker-receiver.ts";

let broker: Broker;
let rx: TestReceiver;
let client: Client;
useBroker((f) => ({ broker, rx, client } = f));

const control = (path: string, method = "POST") =>
  fetch(`${broker.url}/_broker${path}`, { method, headers: { authorization: `Bearer ${broker.token}` } });

describe("schedules", () => {
  it("creates, reports, triggers, pauses, resumes, upserts and deletes", async () => {
    const { scheduleId } = await client.schedules.create({
      destination: `${rx.base}/sched`,
      cron: "0 0 1 1 *",
      body: JSON.stringify({ report: "yearly ✓" }),
      headers: { "X-Report": "1" },
      retries: 2,
      delay: 0,
    });
    expect(scheduleId).toBeTruthy();
    const s = await client.schedules.get(scheduleId);
    expect(s).toMatchObject({
      scheduleId,
      cron: "0 0 1 1 *",
      destination: `${rx.base}/sched`,
      method: "POST",
      retries: 2,
      isPaused: false,
      body: JSON.stringify({ report: "yearly ✓" }),
    });
    expect(s.header?.["X-Report"]).toEqual(["1"]);
    expect(s.createdAt).toBeGreaterThan(Date.now() - 60_000);
    expect(s.nextScheduleTime).toBeGreaterThan(Date.now());
    expect((s.nextScheduleTime as number) % 60_000).toBe(0);
    expect((await client.schedules.list()).some((x) => x.scheduleId === scheduleId)).toBe(true);

    const fired = await control(`/schedules/${scheduleId}/trigger`);
    expect(fired.status).toBe(200);
    const { messageId } = (await fired.json()) as { messageId: string };
    const [d] = await rx.waitFor("/sched", 1);
    expect(d?.headers["upstash-schedule-id"]).toBe(scheduleId);
    expect(d?.messageId).toBe(messageId);
    expect(d?.headers["x-report"]).toBe("1");
    expect(d?.text).toBe(JSON.stringify({ report: "yearly ✓" }));
    expect(d?.verified).toBe(true);

    await client.schedules.pause({ schedule: scheduleId });
    expect((await client.schedules.get(scheduleId)).isPaused).toBe(true);
    await client.schedules.resume({ schedule: scheduleId });
    expect((await client.schedules.get(scheduleId)).isPaused).toBe(false);
    // The docs' POST form works too.
    const post = (action: string) =>
      fetch(`${broker.url}/v2/schedules/${scheduleId}/${action}`, { method: "POST", headers: { authorization: `Bearer ${broker.token}` } });
    expect((await post("pause")).status).toBe(200);
    expect((await client.schedules.get(scheduleId)).isPaused).toBe(true);
    expect((await post("resume")).status).toBe(200);

    const again = await client.schedules.create({
      scheduleId,
      destination: `${rx.base}/sched2`,
      cron: "CRON_TZ=Europe/Istanbul 30 9 * * 1",
      body: "v2",
    });
    expect(again.scheduleId).toBe(scheduleId);
    const s2 = await client.schedules.get(scheduleId);
    expect(s2).toMatchObject({ cron: "CRON_TZ=Europe/Istanbul 30 9 * * 1", destination: `${rx.base}/sched2`, body: "v2", retries: 3 });
    expect(s2.header?.["X-Report"]).toBeUndefined();
    expect(s2.isPaused).toBe(false);

    await client.schedules.delete(scheduleId);
    await expect(client.schedules.get(scheduleId)).rejects.toThrow();
    expect((await client.schedules.list()).some((x) => x.scheduleId === scheduleId)).toBe(false);
  });

  it("rejects a bad cron expression", async () => {
    await expect(client.schedules.create({ destination: `${rx.base}/x`, cron: "every minute" })).rejects.toThrow(/cron/);
  });

  it("fires a minute cron on the scaled clock (1 min = 60 ms at timeScale 0.001)", async () => {
    const { scheduleId } = await client.schedules.create({ destination: `${rx.base}/every-minute`, cron: "* * * * *", body: "tick" });
    const ds = await rx.waitFor("/every-minute", 2, 3000);
    await client.schedules.delete(scheduleId);
    expect(ds.every((d) => d.headers["upstash-schedule-id"] === scheduleId && d.verified)).toBe(true);
    const s = (await client.schedules.list()).find((x) => x.scheduleId === scheduleId);
    expect(s).toBeUndefined();
  });
});
