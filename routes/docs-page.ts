// The API reference page: plain HTML and a small script that reads /openapi.json from the same
// origin and lists every operation with its parameters, body and answers. Nothing is loaded from
// elsewhere (no CDN), so it works offline and under a strict CSP.
export const DOCS_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>celeriac API reference</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;margin:0;color:#1d2125;background:#fafaf7}
header{background:#2f4f2f;color:#fff;padding:1rem 2rem}header h1{margin:0;font-size:1.4rem}
main{max-width:960px;margin:0 auto;padding:1rem 2rem}
.op{background:#fff;border:1px solid #dde;border-radius:6px;margin:.8rem 0;padding:.6rem 1rem}
.m{display:inline-block;min-width:4.2rem;font:bold 13px monospace;color:#fff;border-radius:4px;padding:2px 6px;text-align:center}
.get{background:#2b6cb0}.post{background:#2f855a}.delete{background:#c53030}
code,pre{font:13px/1.4 ui-monospace,monospace}pre{background:#f3f3ee;padding:.5rem;overflow:auto;max-height:22rem}
table{border-collapse:collapse}td,th{border-bottom:1px solid #eee;padding:2px 8px;text-align:left;vertical-align:top}
h2{margin-top:2rem;text-transform:capitalize}.muted{color:#667}header .muted{color:#d5e3d5}
</style></head>
<body><header><h1>celeriac API reference</h1><div id="meta" class="muted"></div></header>
<main id="main"><p>Loading <a href="/openapi.json">/openapi.json</a>…</p></main>
<script>
const el = (tag, attrs, ...kids) => { const e = document.createElement(tag); Object.assign(e, attrs); e.append(...kids.filter(k => k != null)); return e; };
const deref = (doc, s) => s && s.$ref ? doc.components.schemas[s.$ref.split("/").pop()] : s;
const pretty = (x) => el("pre", {}, JSON.stringify(x, null, 2));
// \`code\` spans of the descriptions as <code>; everything else as text (never as HTML).
const prose = (tag, s) => el(tag, {}, ...String(s).split("\`").map((part, i) => i % 2 ? el("code", {}, part) : part));
fetch("/openapi.json").then(r => r.json()).then(doc => {
  document.getElementById("meta").textContent = "OpenAPI " + doc.openapi + " · " + doc.servers[0].url;
  const main = document.getElementById("main"); main.textContent = "";
  for (const tag of doc.tags) {
    main.append(el("h2", { id: tag.name }, tag.name), el("p", { className: "muted" }, tag.description));
    for (const [path, item] of Object.entries(doc.paths)) for (const [method, op] of Object.entries(item)) {
      if (!op.tags.includes(tag.name)) continue;
      const box = el("section", { className: "op", id: op.operationId },
        el("div", {}, el("span", { className: "m " + method }, method.toUpperCase()), " ", el("code", {}, path), " — ", prose("span", op.summary)));
      if (op.description) box.append(prose("p", op.description));
      if (op.parameters && op.parameters.length) box.append(el("table", {}, ...op.parameters.map(p => el("tr", {}, el("td", {}, el("code", {}, p.name)), el("td", { className: "muted" }, p.in), prose("td", p.description || "")))));
      const body = op.requestBody && op.requestBody.content["application/json"].schema;
      if (body) {
        const payload = body.properties && deref(doc, body.properties.payload);
        box.append(el("details", { open: !!payload }, el("summary", {}, payload ? "Payload schema" : "Body schema"), pretty(payload || body)));
      }
      box.append(el("table", {}, ...Object.entries(op.responses).map(([s, r]) => el("tr", {}, el("td", {}, el("code", {}, s)), prose("td", r.description)))));
      main.append(box);
    }
  }
}).catch(err => { document.getElementById("main").textContent = "Could not load /openapi.json: " + err; });
</script></body></html>`;
