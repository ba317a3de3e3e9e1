// The dashboard's one stylesheet and one script, served from /ui so the CSP can allow 'self' only
// (no inline style or script anywhere). The script is progressive enhancement: every page works
// without it; it adds live refresh of a `main[data-live]` region and copy buttons.
import { Hono } from "hono";

const CSS = `
:root{--fg:#1a1a1a;--muted:#555;--bg:#fff;--line:#d0d0d0;--accent:#0b57d0;--ok:#146c2e;--bad:#b3261e;--warn:#8a5300;--soft:#f3f4f6}
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
a{color:var(--accent)}
:focus-visible{outline:3px solid var(--accent);outline-offset:2px}
.skip{position:absolute;left:-999px}.skip:focus{left:8px;top:8px;background:#fff;padding:4px 8px;z-index:2}
header{display:flex;flex-wrap:wrap;align-items:center;gap:.5rem 1rem;padding:.5rem 1rem;border-bottom:1px solid var(--line);background:var(--soft)}
.brand{font-weight:700}
nav ul{display:flex;flex-wrap:wrap;gap:.25rem .75rem;list-style:none;margin:0;padding:0}
nav a{text-decoration:none;padding:.25rem .25rem}nav a[aria-current=page]{font-weight:700;text-decoration:underline}
.signout{margin-left:auto}
main{padding:1rem;max-width:72rem;margin:0 auto}
h1{font-size:1.5rem;margin:.25rem 0 1rem;overflow-wrap:anywhere}h2{font-size:1.15rem;margin:1.5rem 0 .5rem}
.muted{color:var(--muted)}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:.95rem}
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid var(--line);vertical-align:top}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
code,pre,.id{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.85rem}
pre{background:var(--soft);padding:.75rem;overflow-x:auto;white-space:pre-wrap;word-break:break-word;border-radius:4px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(7.5rem,1fr));gap:.5rem;padding:0;list-style:none}
.cards a{display:block;border:1px solid var(--line);border-radius:6px;padding:.5rem .75rem;text-decoration:none;color:var(--fg)}
.cards strong{display:block;font-size:1.5rem}
.badge{display:inline-block;padding:0 .45rem;border-radius:999px;font-size:.85rem;border:1px solid currentColor}
.s-succeeded{color:var(--ok)}.s-failed{color:var(--bad)}.s-retrying,.s-scheduled{color:var(--warn)}.s-running,.s-queued{color:var(--accent)}.s-cancelled,.s-unknown{color:var(--muted)}
.notice{padding:.5rem .75rem;border-radius:4px;border-left:4px solid}.notice.error{border-color:var(--bad);background:#fdecea}.notice.ok{border-color:var(--ok);background:#e8f5e9}
form.inline{display:inline}
button,.button{font:inherit;padding:.4rem .8rem;border:1px solid var(--accent);background:var(--accent);color:#fff;border-radius:4px;cursor:pointer;text-decoration:none;display:inline-block;min-height:2.25rem}
.secondary,.signout button{background:#fff;color:var(--accent)}
button.danger{background:var(--bad);border-color:var(--bad)}
label{display:block;font-weight:600;margin:.75rem 0 .25rem}
input,select,textarea{font:inherit;padding:.4rem;border:1px solid #767676;border-radius:4px;width:100%;max-width:40rem;background:#fff;color:var(--fg)}
input[type=checkbox]{width:auto}
textarea{min-height:5rem}
.hint{font-size:.9rem;color:var(--muted);margin:.15rem 0}
.field-error{color:var(--bad);font-size:.9rem;margin:.15rem 0}
.filters{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:flex-end;margin-bottom:1rem}.filters label{margin:0}.filters div{min-width:10rem}
.actions{display:flex;flex-wrap:wrap;gap:.5rem;margin:.5rem 0 1rem}.filters .actions{margin:0}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem;margin:0}dl.facts dt{font-weight:600}dl.facts dd{margin:0;word-break:break-all}
ol.timeline{list-style:none;padding:0;border-left:3px solid var(--line);margin-left:.5rem}
ol.timeline li{padding:.25rem 0 .5rem 1rem}
figure{margin:0}svg.chart{width:100%;height:auto;max-width:44rem;display:block}
time,th[scope=row]{white-space:nowrap}
.bar-s{fill:var(--ok)}.bar-f{fill:var(--bad)}.axis{stroke:var(--line)}
svg text{font-size:14px;fill:var(--muted)}
@media (max-width:40rem){dl.facts{grid-template-columns:1fr}main{padding:.75rem}}
`;

const JS = `(() => {
  const enhance = (root) => { for (const b of root.querySelectorAll("button[data-copy]")) b.hidden = false; };
  enhance(document);
  document.addEventListener("click", async (e) => {
    const b = e.target.closest && e.target.closest("button[data-copy]");
    if (!b) return;
    const el = document.getElementById(b.dataset.copy);
    try { await navigator.clipboard.writeText(el ? el.textContent : ""); b.textContent = "Copied"; }
    catch { b.textContent = "Select the text to copy it"; }
  });
  const main = document.querySelector("main[data-live]");
  if (!main) return;
  const every = Math.max(2, Number(main.dataset.live) || 5) * 1000;
  const tick = async () => {
    // Never swap the page under someone who is using a form or control in it.
    const busy = document.hidden || (main.contains(document.activeElement) && document.activeElement !== main);
    if (!busy) {
      try {
        const res = await fetch(location.href, { credentials: "same-origin" });
        if (!res.ok || res.redirected) return;
        const next = new DOMParser().parseFromString(await res.text(), "text/html").querySelector("main");
        if (!next) return;
        main.innerHTML = next.innerHTML;
        enhance(main);
        if (!next.hasAttribute("data-live")) return main.removeAttribute("data-live");
      } catch { /* offline for a moment: try again next tick */ }
    }
    setTimeout(tick, every);
  };
  setTimeout(tick, every);
})();
`;

/** `/ui/assets/*`: served without a session (they hold no data), cached for an hour. */
export const uiAssets = new Hono()
  .get("/assets/ui.css", (c) => c.body(CSS, 200, { "content-type": "text/css; charset=utf-8", "cache-control": "public, max-age=3600" }))
  .get("/assets/ui.js", (c) =>
    c.body(JS, 200, { "content-type": "text/javascript; charset=utf-8", "cache-control": "public, max-age=3600" }),
  );
