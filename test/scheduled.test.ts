// The Worker's scheduled() handler called directly, as workerd calls it for a Cron Trigger: it
// hands its work to waitUntil, syncs, and fails with the reason when the relay is misconfigured.
import { describe, expect, it, vi } from "vitest";
import { createApp } from "../src/app.ts";
import { call, stack } from "./helpers/api.ts";

const event = { cron: "*/10 * * * *", scheduledTime: Date.now() };

describe("scheduled()", () => {
  it("syncs the schedules through waitUntil and logs the report", async () => {
    const log = vi.spyOn(console, "log").mockImplementation(() => {});
    const waited: Promise<unknown>[] = [];
    await createApp().scheduled(event, { ...stack().env }, { waitUntil: (p) => waited.push(p) });
    expect(waited).toHaveLength(1);
    await waited[0];
    expect(log).toHaveBeenCalledWith(
      expect.stringMatching(
        /^\[celeriac\] schedule sync \(cron "\*\/10 \* \* \* \*"\): [01] created, 0 updated, 0 deleted, [01] unchanged$/,
      ),
    );
    // QStash now holds the declared schedule as declared.
    const status = await call("GET", "/v1/schedules");
    expect(status.body.schedules).toEqual([expect.objectContaining({ id: "celeriac-daily-stats-daily", drift: [] })]);
    log.mockRestore();
  });

  it("without CELERIAC_PUBLIC_URL the run fails, naming it", async () => {
    const { CELERIAC_PUBLIC_URL: _, ...env } = stack().env;
    const waited: Promise<unknown>[] = [];
    const run = createApp().scheduled(event, env, { waitUntil: (p) => waited.push(p) });
    await expect(run).rejects.toThrow(
      '[celeriac] schedule sync (cron "*/10 * * * *") skipped, the relay is misconfigured: CELERIAC_PUBLIC_URL is missing',
    );
    expect(waited).toHaveLength(1);
  });
});
