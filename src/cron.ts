// Checks 5-field cron expressions (what QStash accepts) so a typo fails when the app loads,
// not silently at sync time. Evaluation is QStash's job; this only validates.

const FIELDS = [
  { name: "minute", min: 0, max: 59 },
  { name: "hour", min: 0, max: 23 },
  { name: "day of month", min: 1, max: 31 },
  { name: "month", min: 1, max: 12, names: ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"] },
  { name: "day of week", min: 0, max: 7, names: ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"] },
];

/** Returns why `expr` is not a valid 5-field cron expression, or undefined when it is. */
export function cronProblem(expr: string): string | undefined {
  const parts = expr.trim().split(/\s+/);
  if (parts.length !== 5) return `"${expr}" must have 5 fields (minute hour day-of-month month day-of-week)`;
  for (const [i, part] of parts.entries()) {
    const f = FIELDS[i]!;
    const value = (s: string) => {
      const byName = f.names?.indexOf(s.toUpperCase()) ?? -1;
      if (byName >= 0) return byName + (f.name === "month" ? 1 : 0);
      return /^\d+$/.test(s) ? Number(s) : NaN;
    };
    for (const item of part.split(",")) {
      const m = /^(\*|[^/-]+(?:-[^/-]+)?)(?:\/(\d+))?$/.exec(item);
      if (!m) return `${f.name} field "${part}" is not valid`;
      if (m[2] !== undefined && Number(m[2]) < 1) return `${f.name} step must be at least 1`;
      if (m[1] === "*") continue;
      const [lo, hi] = m[1]!.split("-").map(value);
      for (const n of [lo, hi]) {
        if (n === undefined) continue;
        if (!Number.isInteger(n) || n < f.min || n > f.max) return `${f.name} "${item}" is outside ${f.min}-${f.max}`;
      }
      if (hi !== undefined && lo! > hi) return `${f.name} range "${item}" runs backwards`;
    }
  }
  return undefined;
}

/** True for an IANA time zone name the runtime knows (`Europe/Berlin`, `UTC`). */
export function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}
