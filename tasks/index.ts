import type { AnyTask } from "../src/task.ts";
import callback from "./callback.ts";
import dailyStats from "./daily-stats.ts";
import sendEmail from "./send-email.ts";
import verification from "./verification.ts";
import webhook from "./webhook.ts";

/** Every task type the relay knows. Adding one: a file in tasks/ and a line here. */
export const tasks: AnyTask[] = [sendEmail, webhook, dailyStats, verification, callback];
