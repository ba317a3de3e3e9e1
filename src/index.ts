// `celeriac`: the package's main entry. A Worker of one's own is
//   import { createApp, defineTask } from "celeriac";
//   import { sendEmail } from "celeriac/tasks";
//   export default createApp({ tasks: [myTask, sendEmail] });
export { createApp, type App, type AppOptions } from "./app.ts";
export * from "./task.ts";
export type { Services } from "./services.ts";
export type { ErrorBody } from "./errors.ts";
export type { TaskRecord, TaskState, TaskError, HistoryEntry } from "./store/record.ts";
