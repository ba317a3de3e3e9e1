// A hand-written SVG line chart: time to the last notification by N, log–log, one line per
// series (a way, at a provider latency). No dependencies.

export interface Series {
  label: string;
  color: string;
  dashed?: boolean;
  points: { n: number; ms: number; extrapolated: boolean }[];
}

export function chart(series: Series[], title = "The noon burst: time until the last notification lands"): string {
  const W = 720,
    H = 440,
    left = 70,
    right = 200,
    top = 40,
    bottom = 60;
  const pw = W - left - right,
    ph = H - top - bottom;
  const all = series.flatMap((s) => s.points).filter((p) => Number.isFinite(p.ms) && p.ms > 0);
  const ns = [...new Set(all.map((p) => p.n))].sort((a, b) => a - b);
  const xmin = Math.log10((ns[0] ?? 100) / 2),
    xmax = Math.log10((ns.at(-1) ?? 1000) * 2);
  const ymin = Math.floor(Math.log10(Math.min(...all.map((p) => p.ms / 1000), 1))),
    ymax = Math.floor(Math.log10(Math.max(...all.map((p) => p.ms / 1000), 10))) + 1;
  const x = (n: number) => left + ((Math.log10(n) - xmin) / (xmax - xmin)) * pw;
  const y = (s: number) => top + ph - ((Math.log10(s) - ymin) / (ymax - ymin || 1)) * ph;
  const f = (v: number) => v.toFixed(1);
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, sans-serif" font-size="12">`,
  );
  out.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  out.push(`<text x="${left}" y="22" font-size="15" font-weight="600">${title}</text>`);
  out.push(`<text x="${W - 12}" y="${H - 14}" text-anchor="end" fill="#555">lower is better; figures in RESULTS.md</text>`);
  for (let e = ymin; e <= ymax; e++) {
    const s = 10 ** e;
    out.push(`<line x1="${left}" x2="${left + pw}" y1="${f(y(s))}" y2="${f(y(s))}" stroke="#ddd"/>`);
    out.push(`<text x="${left - 8}" y="${f(y(s) + 4)}" text-anchor="end">${s >= 1 ? s.toLocaleString("en-US") : s} s</text>`);
  }
  for (const n of ns) {
    out.push(`<line x1="${f(x(n))}" x2="${f(x(n))}" y1="${top}" y2="${top + ph}" stroke="#eee"/>`);
    out.push(`<text x="${f(x(n))}" y="${top + ph + 18}" text-anchor="middle">N = ${n.toLocaleString("en-US")}</text>`);
  }
  out.push(`<rect x="${left}" y="${top}" width="${pw}" height="${ph}" fill="none" stroke="#888"/>`);
  out.push(`<text x="${left + pw / 2}" y="${H - 14}" text-anchor="middle">orders arriving at once (log scale)</text>`);
  out.push(`<text transform="translate(16 ${top + ph / 2}) rotate(-90)" text-anchor="middle">seconds (log scale)</text>`);
  series.forEach((s, i) => {
    const pts = s.points.filter((p) => Number.isFinite(p.ms) && p.ms > 0);
    const dash = s.dashed ? ` stroke-dasharray="6 4"` : "";
    if (pts.length > 1) {
      out.push(
        `<polyline fill="none" stroke="${s.color}" stroke-width="2"${dash} points="${pts.map((p) => `${f(x(p.n))},${f(y(p.ms / 1000))}`).join(" ")}"/>`,
      );
    }
    for (const p of pts) {
      const fill = p.extrapolated ? "#fff" : s.color;
      out.push(
        `<circle cx="${f(x(p.n))}" cy="${f(y(p.ms / 1000))}" r="4.5" fill="${fill}" stroke="${s.color}" stroke-width="2"><title>${s.label}, N = ${p.n}: ${(p.ms / 1000).toFixed(2)} s${p.extrapolated ? " (extrapolated)" : ""}</title></circle>`,
      );
    }
    const ly = top + 10 + i * 22;
    out.push(`<line x1="${left + pw + 16}" x2="${left + pw + 46}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="2"${dash}/>`);
    out.push(`<text x="${left + pw + 52}" y="${ly + 4}">${s.label}</text>`);
  });
  const ly = top + 10 + series.length * 22 + 8;
  out.push(`<circle cx="${left + pw + 31}" cy="${ly}" r="4.5" fill="#fff" stroke="#555" stroke-width="2"/>`);
  out.push(`<text x="${left + pw + 52}" y="${ly + 4}">extrapolated</text>`);
  out.push(`<circle cx="${left + pw + 31}" cy="${ly + 20}" r="4.5" fill="#555"/>`);
  out.push(`<text x="${left + pw + 52}" y="${ly + 24}">measured</text>`);
  out.push(`</svg>`);
  return `${out.join("\n")}\n`;
}
