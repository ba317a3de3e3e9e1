import type { AnyTask } from "../src/task.ts";
import callback from "./callback.ts";
import dailyStats from "./daily-stats.ts";
import sendEmail from "./send-email.ts";
import verification from "./verification.ts";
import webhook from "./webhook.ts";

/**
 * Every task type the relay knows. Adding one: a file in tasks/ and a line here. A tuple, so
 * `createClient<typeof tasks>` knows each name and payload.
 */
export const tasks = [sendEmail, webhook, dailyStats, verification, callback] as const satisfies readonly AnyTask[];

export { callback, dailyStats, sendEmail, verification, webhook };
