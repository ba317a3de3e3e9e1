// Building blocks of the OpenAPI document: references, JSON bodies, error answers, parameters.
export type Schema = Record<string, unknown>;

export const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
export const json = (schema: Schema, description: string) => ({ description, content: { "application/json": { schema } } });
export const error = (description: string) => json(ref("Error"), description);
export const path = (name: string, description: string) => ({ name, in: "path", required: true, description, schema: { type: "string" } });
export const query = (name: string, description: string, schema: Schema = { type: "string" }) => ({
  name,
  in: "query",
  required: false,
  description,
  schema,
});

export const common = {
  400: error("Malformed options, query or JSON (`invalid_options`, `invalid_query`, `invalid_json`)"),
  401: error("No API key (`missing_api_key`)"),
  403: error("An API key celeriac does not accept (`invalid_api_key`)"),
  503: error("Misconfigured, or Redis or QStash unavailable; `Retry-After` says when to try again"),
};
export const byId = [path("id", "The task id (`tsk_…`)")];
export const record = (description: string) => ({
  200: json(ref("TaskRecord"), description),
  404: error("No task with this id (`unknown`)"),
  ...common,
});

export const CHECK = {
  type: "object",
  required: ["email", "purpose", "code"],
  properties: { email: { type: "string" }, purpose: { type: "string" }, code: { type: "string", pattern: "^[0-9]{6}$" } },
};
export const checked = (description: string) => ({
  200: json(
    { type: "object", required: ["verified", "token"], properties: { verified: { const: true }, token: { type: "string" } } },
    description,
  ),
  400: error("The body is not `{email, purpose, code}` (`invalid_check`)"),
  409: error("This code was already used (`code_used`)"),
  410: error("No live code for this address and purpose (`code_expired`)"),
  422: error("Wrong code (`wrong_code`); `triesLeft` says how many tries remain"),
  429: error("Five wrong tries: request a new code (`too_many_attempts`)"),
});
export const browser = (description: string) => ({
  403: error("Not from an allowed origin (`origin_not_allowed`), or the Turnstile check failed"),
  503: error(description),
});
