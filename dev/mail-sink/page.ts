import type { CapturedEmail } from "./types.ts";

/** Escapes text for HTML element content and double-quoted attribute values. */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Email HTML may load images, but nothing may run script or phone elsewhere. */
export const PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src * data:; frame-src 'self'";

const STYLE = `body{font:14px system-ui,sans-serif;margin:2rem;color:#222}table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.4rem .6rem;border-bottom:1px solid #ddd;vertical-align:top}th{background:#f4f4f4}
iframe{width:100%;height:60vh;border:1px solid #ccc}pre{background:#f7f7f7;padding:1rem;white-space:pre-wrap}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dt{font-weight:600}.muted{color:#777}`;

function layout(title: string, body: string): string {
  return (
    `<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>` +
    `<style>${STYLE}</style></head><body>${body}</body></html>`
  );
}

const list = (v: string[] | null) => escapeHtml((v ?? []).join(", "));

/** `GET /`: every captured email, newest first. */
export function renderMailbox(emails: CapturedEmail[]): string {
  const rows = emails.map(
    (e) =>
      `<tr><td>${escapeHtml(e.created_at)}</td><td>${escapeHtml(e.from)}</td>` +
      `<td>${list(e.to)}</td><td><a href="/_sink/emails/${encodeURIComponent(e.id)}/html">${escapeHtml(e.subject)}</a></td></tr>`,
  );
  const table = rows.length
    ? `<table><thead><tr><th>Time</th><th>From</th><th>To</th><th>Subject</th></tr></thead><tbody>${rows.join("")}</tbody></table>`
    : `<p class="muted">No email yet.</p>`;
  return layout(
    "celeriac mail sink",
    `<h1>celeriac mail sink</h1><p class="muted">${emails.length} captured · ` +
      `<a href="/">refresh</a> · <a href="/_sink/emails">JSON</a></p>${table}`,
  );
}

/** `GET /_sink/emails/:id/html`: one email, its HTML rendered in a sandbox with no script. */
export function renderEmail(e: CapturedEmail): string {
  const field = (name: string, value: string) => (value ? `<dt>${name}</dt><dd>${value}</dd>` : "");
  const meta =
    `<dl>${field("From", escapeHtml(e.from))}${field("To", list(e.to))}${field("Cc", list(e.cc))}` +
    `${field("Bcc", list(e.bcc))}${field("Reply-To", list(e.reply_to))}${field("Subject", escapeHtml(e.subject))}` +
    `${field("Time", escapeHtml(e.created_at))}${field("Id", escapeHtml(e.id))}` +
    `${field("Idempotency-Key", escapeHtml(e.idempotency_key ?? ""))}</dl>`;
  const html =
    e.html === null
      ? `<p class="muted">No HTML body.</p>`
      : `<h2>HTML</h2><iframe sandbox srcdoc="${escapeHtml(e.html)}" title="HTML body"></iframe>`;
  const text = e.text === null ? `<p class="muted">No text body.</p>` : `<h2>Text</h2><pre>${escapeHtml(e.text)}</pre>`;
  return layout(e.subject, `<p><a href="/">← mailbox</a></p><h1>${escapeHtml(e.subject)}</h1>${meta}${html}${text}`);
}
