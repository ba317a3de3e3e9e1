// `celeriac`: the package's main entry. A Worker of one's own is
//   import { createApp, defineTask } from "celeriac";
//   import { sendEmail } from "celeriac/tasks";
//   export default createApp({ tasks: [myTask, sendEmail] });
export { type App, type AppOptions, createApp } from "./app.ts";
export type { ErrorBody } from "./errors.ts";
export type { Services } from "./services.ts";
export type { HistoryEntry, TaskError, TaskRecord, TaskState } from "./store/record.ts";
export * from "./task.ts";
