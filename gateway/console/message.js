// One message in the timeline: its content by kind (text, a file fetched with the token, a link,
// a template, a location, contacts, buttons and lists, a reaction, a deleted placeholder), its time
// and, for what the business sent, its delivery ticks.

import { useEffect, useState } from "preact/hooks";
import { authorized } from "./api.js";
import { t } from "./i18n.js";
import { html } from "./ui.js";

const TICKS = { pending: "🕓", accepted: "✓", sent: "✓", delivered: "✓✓", read: "✓✓", failed: "!" };
const RANK = { pending: 0, accepted: 1, sent: 2, delivered: 3, read: 4, failed: 5 };

/** The further along of two statuses of one message (a late answer never moves ticks back). */
export const further = (a, b) => ((RANK[b] ?? -1) > (RANK[a] ?? -1) ? b : a);

/** Only web addresses become links (never `javascript:` or `data:`). */
const safeUrl = (url) => (/^https?:\/\//i.test(url || "") ? url : null);

/** A media message's file, fetched with the token (never a URL a browser could share). */
function Media({ conversationId, message }) {
  const [url, setUrl] = useState(null);
  const [failed, setFailed] = useState(false);
  const content = message.content;
  const path = `/conversations/${conversationId}/messages/${message.seq}/media`;
  useEffect(() => {
    let made = null;
    let gone = false;
    if (content.kind === "image" || content.kind === "sticker") {
      authorized(path)
        .then((r) => (r.ok ? r.blob() : null))
        .then((blob) => {
          if (!blob || gone) return;
          made = URL.createObjectURL(blob);
          setUrl(made);
        })
        .catch(() => {});
    }
    return () => {
      gone = true;
      if (made) URL.revokeObjectURL(made);
    };
  }, [message.seq]);
  const download = async () => {
    const response = await authorized(`${path}?download=false`).catch(() => null);
    setFailed(!response?.ok);
    if (!response?.ok) return;
    const link = document.createElement("a");
    link.href = URL.createObjectURL(await response.blob());
    link.download = content.filename || "arquivo";
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  };
  return html`<div class="media">
    ${url ? html`<img src=${url} alt=${content.caption || ""} />` : html`<button type="button" class="secondary" onClick=${download}>${t.download} ${content.filename || t.kinds[content.kind] || content.kind}</button>`}
    ${failed && html`<p class="error">${t.downloadFailed}</p>`}
    ${content.caption && html`<p>${content.caption}</p>`}
  </div>`;
}

function Body({ conversationId, message }) {
  const c = message.content;
  switch (c.type) {
    case "text":
      return html`<p>${c.body}</p>`;
    case "media":
      return html`<${Media} conversationId=${conversationId} message=${message} />`;
    case "media_link": {
      const href = safeUrl(c.url);
      const label = c.filename || t.kinds[c.kind] || c.kind;
      return html`<div class="media">
        ${href ? html`<a href=${href} target="_blank" rel="noopener noreferrer">${label}</a>` : html`<span>${label}</span>`}
        ${c.caption && html`<p>${c.caption}</p>`}
      </div>`;
    }
    case "template":
      return html`<p><span class="label">${t.template}</span> ${c.name} (${c.language})${(c.body_parameters || []).length > 0 && ` · ${c.body_parameters.join(", ")}`}</p>`;
    case "location":
      return html`<p><span class="label">${t.location}</span> ${[c.name, c.address].filter(Boolean).join(" — ")} (${c.latitude}, ${c.longitude})</p>`;
    case "contacts":
      return html`<p><span class="label">${t.sharedContacts}</span> ${c.contacts.map((x) => [x.name, ...(x.phones || [])].join(" ")).join("; ")}</p>`;
    case "interactive":
      return html`<div><p>${c.body}</p><p class="choices">${c.buttons.map((b) => html`<span class="badge">${b.title}</span>`)}</p></div>`;
    case "interactive_list":
      return html`<div><p>${c.body}</p><p class="choices"><span class="badge">${c.button}</span></p></div>`;
    case "interactive_reply":
      return html`<p>${c.title}${c.description ? ` — ${c.description}` : ""}</p>`;
    case "reaction":
      return html`<p class="reaction">${c.emoji || t.reactionRemoved}</p>`;
    case "unsupported":
      if (c.provider_type === "deleted") return html`<p class="deleted">${t.deleted}</p>`;
      return html`<p class="other">${t.unsupported} (${c.provider_type})</p>`;
    default:
      return html`<p class="other">${c.type}</p>`;
  }
}

export function Message({ conversationId, message }) {
  const outbound = message.direction === "outbound";
  return html`<li class=${`message ${outbound ? "out" : "in"}`} data-testid="message" data-seq=${message.seq} data-status=${message.status}>
    <${Body} conversationId=${conversationId} message=${message} />
    <span class="meta">
      ${new Date(message.created_at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}
      ${outbound && html` <span class=${`ticks ticks-${message.status}`} aria-label=${t.ticks[message.status] || message.status} data-testid="ticks">${TICKS[message.status] || ""}</span>`}
    </span>
    ${message.error && html`<span class="error">${message.error.title}</span>`}
  </li>`;
}
