// The reply box: text (Enter sends, Shift+Enter breaks a line), quick replies by typing `/` and a
// shortcut, a file by its URL, a template when WhatsApp's 24-hour window is closed, and internal
// notes. Each draft has one `client_message_id`, so a repeated send is never sent twice.

import { useEffect, useState } from "preact/hooks";
import { api } from "./api.js";
import { t } from "./i18n.js";
import { html, can, features, connections, Field, Problem } from "./ui.js";

const DAY_MS = 24 * 60 * 60 * 1000;
const KINDS = ["image", "document", "audio", "video"];

/** WhatsApp Cloud takes only templates 24 hours after the customer's last message. */
export function windowClosed(conversation, now = Date.now()) {
  const provider = connections.value.find((c) => c.id === conversation.connection_id)?.provider;
  if (provider !== "whatsapp_cloud") return false;
  const last = conversation.last_inbound_at ? Date.parse(conversation.last_inbound_at) : null;
  return last == null || now - last > DAY_MS;
}

/** The quick replies whose shortcut starts like the draft (`/sau` → `/saudacao`): the tenant's and
 *  the conversation's department's (the one the server renders for it). */
function useSuggestions(text, team) {
  const [items, setItems] = useState([]);
  const typing = /^\/[^\s]*$/.test(text) ? text : null;
  useEffect(() => {
    if (typing == null) return setItems([]);
    let gone = false;
    const query = new URLSearchParams();
    if (typing.length > 1) query.set("search", typing.slice(1));
    if (team) query.set("team_id", team);
    api(`/canned_responses?${query}`)
      .then((list) => !gone && setItems(list.filter((q) => q.short_code.startsWith(typing)).slice(0, 8)))
      .catch(() => !gone && setItems([]));
    return () => (gone = true);
  }, [typing, team]);
  return items;
}

export function Composer({ conversation, onSent }) {
  const [mode, setMode] = useState("reply");
  const [text, setText] = useState("");
  const [link, setLink] = useState(null);
  const [template, setTemplate] = useState({ name: "", language: "pt_BR", params: "" });
  const [sending, setSending] = useState(false);
  const [problem, setProblem] = useState(null);
  const [draftId, setDraftId] = useState(() => crypto.randomUUID());
  const [active, setActive] = useState(0);
  const [dismissed, setDismissed] = useState(false);
  const [refusedWindow, setRefusedWindow] = useState(false);
  const found = useSuggestions(mode === "reply" ? text : "", conversation.team);
  const suggestions = dismissed ? [] : found;
  const notes = can("manage_tickets") && features.value.notes_on_messages !== false;
  // The server has the last word on the window: a refusal turns the box into the template form.
  const closed = mode === "reply" && (refusedWindow || windowClosed(conversation));

  const pick = async (quick) => {
    try {
      const rendered = await api(`/conversations/${conversation.id}/canned_responses/render`, {
        method: "POST",
        body: JSON.stringify({ short_code: quick.short_code }),
      });
      setText(rendered.text);
      setDismissed(true);
    } catch (error) {
      setProblem(error.message);
    }
  };

  const body = () => {
    if (closed) {
      const params = template.params.split("\n").map((p) => p.trim()).filter(Boolean);
      return { template: { name: template.name.trim(), language: template.language.trim(), body_parameters: params } };
    }
    if (link?.url) return { media: { kind: link.kind, url: link.url.trim(), caption: text.trim() || undefined } };
    return { text };
  };
  const ready = closed ? template.name.trim() : link?.url || text.trim();

  const send = async (event) => {
    event?.preventDefault();
    if (!ready || sending) return;
    setSending(true);
    try {
      if (mode === "note") {
        // The note shows in the timeline when its event arrives (with its place, the seq).
        await api(`/conversations/${conversation.id}/notes`, { method: "POST", body: JSON.stringify({ content: text }) });
      } else {
        const sent = await api(`/conversations/${conversation.id}/messages`, {
          method: "POST",
          body: JSON.stringify({ ...body(), client_message_id: draftId }),
        });
        onSent(sent);
        setDraftId(crypto.randomUUID());
        setLink(null);
      }
      setText("");
      setProblem(null);
    } catch (error) {
      if (error.body?.code === "customer_service_window_closed") setRefusedWindow(true);
      setProblem(error.message);
    } finally {
      setSending(false);
    }
  };

  const onKeyDown = (event) => {
    if (suggestions.length > 0 && event.key === "Escape") {
      event.preventDefault();
      setDismissed(true);
      return;
    }
    if (suggestions.length > 0) {
      const step = { ArrowDown: 1, ArrowUp: -1 }[event.key];
      if (step) {
        event.preventDefault();
        setActive((active + step + suggestions.length) % suggestions.length);
        return;
      }
      if (event.key === "Enter" || event.key === "Tab") {
        event.preventDefault();
        pick(suggestions[Math.min(active, suggestions.length - 1)]);
        return;
      }
    }
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send();
    }
  };

  return html`<form class=${`composer mode-${mode}`} onSubmit=${send} data-testid="composer">
    ${notes && html`<div class="modes" role="radiogroup" aria-label=${t.composeAs}>
      <label class="check"><input type="radio" name="mode" checked=${mode === "reply"} onChange=${() => setMode("reply")} /> ${t.reply}</label>
      <label class="check"><input type="radio" name="mode" checked=${mode === "note"} onChange=${() => setMode("note")} data-testid="note-mode" /> ${t.internalNote}</label>
    </div>`}
    ${closed
      ? html`<fieldset class="template" data-testid="template">
          <legend>${t.windowClosed}</legend>
          <${Field} label=${t.templateName}><input value=${template.name} required data-testid="template-name"
            onInput=${(e) => setTemplate({ ...template, name: e.target.value })} /></${Field}>
          <${Field} label=${t.language}><input value=${template.language} onInput=${(e) => setTemplate({ ...template, language: e.target.value })} /></${Field}>
          <${Field} label=${t.templateParams}><textarea value=${template.params} onInput=${(e) => setTemplate({ ...template, params: e.target.value })}></textarea></${Field}>
        </fieldset>`
      : html`<div class="reply">
          <textarea aria-label=${mode === "note" ? t.internalNote : t.reply} placeholder=${mode === "note" ? t.notePlaceholder : t.replyPlaceholder}
            value=${text} data-testid="reply" onInput=${(e) => (setText(e.target.value), setActive(0), setDismissed(false))} onKeyDown=${onKeyDown}
            role="combobox" aria-autocomplete="list" aria-expanded=${suggestions.length > 0}
            aria-controls=${suggestions.length > 0 ? "quick-replies" : undefined}
            aria-activedescendant=${suggestions.length > 0 ? `quick-reply-${Math.min(active, suggestions.length - 1)}` : undefined}></textarea>
          ${suggestions.length > 0 && html`<ul id="quick-replies" role="listbox" class="suggestions" data-testid="quick-replies" aria-label=${t.quickReplies}>
            ${suggestions.map(
              (q, i) => html`<li role="option" id=${`quick-reply-${i}`} aria-selected=${i === active} onMouseDown=${(e) => (e.preventDefault(), pick(q))}>
                <strong>${q.short_code}</strong> <span>${q.content}</span></li>`,
            )}
          </ul>`}
        </div>`}
    ${mode === "reply" && !closed && link && html`<div class="link-fields">
      <${Field} label=${t.fileUrl}><input type="url" required value=${link.url} data-testid="media-url" onInput=${(e) => setLink({ ...link, url: e.target.value })} /></${Field}>
      <${Field} label=${t.fileKind}><select value=${link.kind} onChange=${(e) => setLink({ ...link, kind: e.target.value })}>
        ${KINDS.map((k) => html`<option value=${k}>${t.kinds[k]}</option>`)}</select></${Field}>
    </div>`}
    <div class="actions">
      ${mode === "reply" && !closed && html`<button type="button" class="secondary" aria-pressed=${!!link} data-testid="attach"
        onClick=${() => setLink(link ? null : { url: "", kind: "image" })}>${t.attachLink}</button>`}
      <button type="submit" data-testid="send" disabled=${sending}>${mode === "note" ? t.addNote : t.send}</button>
    </div>
    <${Problem} text=${problem} />
  </form>`;
}
