/** Broker building blocks: durations, Retry-After, the retry-delay expression language, flow-control parsing. */
import { describe, expect, it } from "vitest";
import { defaultBackoffMs, parseDuration, parseRetryAfter } from "../dev/broker/durations.ts";
import { FLOW_CONTROL_ERROR, parseFlowControlValue } from "../dev/broker/publish.ts";
import { compileRetryDelay } from "../dev/broker/retry-expr.ts";

describe("durations", () => {
  it("parses compound and decimal durations", () => {
    expect(parseDuration("20s")).toBe(20_000);
    expect(parseDuration("1d10h30m")).toBe((86_400 + 36_000 + 1_800) * 1000);
    expect(parseDuration("1.5s")).toBe(1500);
    expect(parseDuration("6m5s")).toBe(365_000);
    expect(parseDuration("300ms")).toBe(300);
    expect(parseDuration("45")).toBe(45_000);
    expect(parseDuration("5x")).toBeUndefined();
    expect(parseDuration("")).toBeUndefined();
  });

  it("reads Retry-After as seconds, HTTP date or Go duration; 0 = now; over a day = default", () => {
    const now = Date.parse("2030-01-01T00:00:00Z");
    expect(parseRetryAfter("120", now)).toBe(120_000);
    expect(parseRetryAfter("0", now)).toBe(0);
    expect(parseRetryAfter("6m5s", now)).toBe(365_000);
    expect(parseRetryAfter("Tue, 01 Jan 2030 00:01:30 GMT", now)).toBe(90_000);
    expect(parseRetryAfter("172800", now)).toBeUndefined();
    expect(parseRetryAfter("soon", now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });

  it("default backoff is min(1 day, e^(2.5 n)) seconds", () => {
    expect(Math.round(defaultBackoffMs(1) / 1000)).toBe(12);
    expect(Math.round(defaultBackoffMs(2) / 1000)).toBe(148);
    expect(Math.round(defaultBackoffMs(3) / 1000)).toBe(1808);
    expect(defaultBackoffMs(10)).toBe(86_400_000);
  });
});

describe("retry-delay expressions", () => {
  it("evaluates the documented functions over `retried`", () => {
    expect(compileRetryDelay("1000")(5)).toBe(1000);
    expect(compileRetryDelay("1000 * (1 + retried)")(2)).toBe(3000);
    expect(compileRetryDelay("pow(2, retried) * 1000")(3)).toBe(8000);
    expect(compileRetryDelay("max(1000, pow(2, retried) * 100)")(0)).toBe(1000);
    expect(compileRetryDelay("min(86400000, exp(retried) * 1000)")(0)).toBe(1000);
    expect(compileRetryDelay("floor(2.7) + ceil(0.2) + round(1.5) + abs(-4) + sqrt(16)")(0)).toBe(13);
    // -10 + 2 = -8: negative delays clamp to 0.
    expect(compileRetryDelay("-retried * 10 + 100 % 7")(1)).toBe(0);
    expect(compileRetryDelay("10 - 2 * 3")(0)).toBe(4);
  });

  it("rejects anything else instead of evaluating it", () => {
    for (const bad of ["", "pow(2)", "foo(1)", "retried;1", "constructor", "this.x", "1 +", "(1", "`1`", "process.exit(1)"]) {
      expect(() => compileRetryDelay(bad), bad).toThrow();
    }
  });
});

describe("flow-control values", () => {
  it("parses with or without spaces", () => {
    expect(parseFlowControlValue("k", "parallelism=3, rate=5, period=1m")).toEqual({ key: "k", parallelism: 3, rate: 5, period: 60 });
    expect(parseFlowControlValue("k", "parallelism=3,rate=5")).toEqual({ key: "k", parallelism: 3, rate: 5 });
    expect(parseFlowControlValue("k", "rate=10,period=30")).toEqual({ key: "k", rate: 10, period: 30 });
  });
  it("rejects bad values with QStash's text", () => {
    for (const bad of ["", "parallelism=x", "rate=-1", "period=1m", "foo=1", "parallelism=1;rate=2"]) {
      expect(() => parseFlowControlValue("k", bad), bad).toThrow(FLOW_CONTROL_ERROR);
    }
  });
});
