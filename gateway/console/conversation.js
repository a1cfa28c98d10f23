// The conversation screen: paged history with media, delivery ticks that advance live and internal
// notes in their place, the reply box, and the side panel (the ticket and the contact). Live events
// reach it through `listeners`, which the shell calls once for every frame of the socket.

import { useEffect, useState } from "preact/hooks";
import htm from "htm";
import { h } from "preact";
import { api, session } from "./api.js";
import { t } from "./i18n.js";
import { Composer } from "./composer.js";
import { TicketPanel, ContactPanel } from "./ticket.js";
import { userName } from "./ui.js";

const html = htm.bind(h);

/** Who hears every live event (the open conversation picks its own); called for each one, in
 *  order, so none is lost between two renders. */
export const listeners = new Set();

const TICKS = { pending: "🕓", accepted: "✓", sent: "✓", delivered: "✓✓", read: "✓✓", failed: "!" };

/** A media message's file, fetched with the token (never a URL a browser could share). */
function Media({ conversationId, message }) {
  const [url, setUrl] = useState(null);
  const content = message.content;
  useEffect(() => {
    let made = null;
    let gone = false;
    if (content.kind === "image" || content.kind === "sticker") {
      fetch(`/api/v1/conversations/${conversationId}/messages/${message.seq}/media`, {
        headers: { authorization: `Bearer ${session.value?.access_token}` },
      })
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
    const response = await fetch(
      `/api/v1/conversations/${conversationId}/messages/${message.seq}/media?download=false`,
      { headers: { authorization: `Bearer ${session.value?.access_token}` } },
    );
    if (!response.ok) return;
    const link = document.createElement("a");
    link.href = URL.createObjectURL(await response.blob());
    link.download = content.filename || "arquivo";
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  };
  return html`<div class="media">
    ${url ? html`<img src=${url} alt=${content.caption || ""} />` : html`<button type="button" onClick=${download}>${t.download} ${content.filename || content.kind}</button>`}
    ${content.caption && html`<p>${content.caption}</p>`}
  </div>`;
}

function Body({ conversationId, message }) {
  const content = message.content;
  if (content.type === "text") return html`<p>${content.body}</p>`;
  if (content.type === "media") return html`<${Media} conversationId=${conversationId} message=${message} />`;
  if (content.type === "unsupported" && content.provider_type === "deleted") return html`<p class="deleted">${t.deleted}</p>`;
  return html`<p class="other">${content.type}</p>`;
}

function Message({ conversationId, message }) {
  const outbound = message.direction === "outbound";
  return html`<li class=${`message ${outbound ? "out" : "in"}`} data-testid="message" data-seq=${message.seq} data-status=${message.status}>
    <${Body} conversationId=${conversationId} message=${message} />
    <span class="meta">
      ${new Date(message.created_at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}
      ${outbound && html` <span class=${`ticks ticks-${message.status}`} aria-label=${t.ticks[message.status] || message.status} data-testid="ticks">${TICKS[message.status] || ""}</span>`}
    </span>
  </li>`;
}

/** A note as the timeline shows it, from its `ticket.note_added` event. */
const noteOf = (event) => ({ seq: event.seq, at: event.at, ...event.data.note });

function Note({ note }) {
  return html`<li class="message note" data-testid="note" data-seq=${note.seq}>
    <span class="label">${t.internalNote} · ${userName(note.author)}</span>
    <p>${note.body || t.hiddenNote}</p>
    <span class="meta">${new Date(note.at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}</span>
  </li>`;
}

/** The notes among events after `after` (a few pages at most: notes outside are not shown). */
async function notesAfter(id, after) {
  const found = [];
  let cursor = after;
  for (let page = 0; page < 5; page += 1) {
    const events = await api(`/conversations/${id}/events?after=${cursor}&limit=200`);
    for (const event of events.items) if (event.event === "ticket.note_added") found.push(noteOf(event));
    if (!events.next_cursor || events.items.length === 0) break;
    cursor = events.next_cursor;
  }
  return found;
}

export function Conversation({ id }) {
  const [conversation, setConversation] = useState(null);
  const [messages, setMessages] = useState([]);
  const [notes, setNotes] = useState([]);
  const [older, setOlder] = useState(null);
  const [problem, setProblem] = useState(null);
  const [details, setDetails] = useState(false);
  const reload = () => api(`/conversations/${id}`).then(setConversation).catch((e) => setProblem(e.message));
  const addNotes = (more) =>
    setNotes((all) => {
      const bySeq = new Map(all.map((n) => [n.seq, n]));
      for (const n of more) bySeq.set(n.seq, n);
      return [...bySeq.values()];
    });
  /** The newest page, merged by seq with what arrived live meanwhile, and the notes among it. */
  const loadNewest = (cancelled) =>
    api(`/conversations/${id}/messages?limit=50`)
      .then((page) => {
        if (cancelled?.()) return;
        setMessages((live) => {
          const bySeq = new Map(page.items.map((m) => [m.seq, m]));
          for (const m of live) if (!bySeq.has(m.seq)) bySeq.set(m.seq, m);
          return [...bySeq.values()].sort((a, b) => a.seq - b.seq);
        });
        setOlder(page.next_cursor);
        const first = page.items[0]?.seq ?? 1;
        return notesAfter(id, Math.max(0, first - 1)).then((found) => !cancelled?.() && addNotes(found));
      })
      .catch((e) => setProblem(e.message));
  useEffect(() => {
    let gone = false;
    setMessages([]);
    setNotes([]);
    setConversation(null);
    reload();
    loadNewest(() => gone);
    return () => (gone = true);
  }, [id]);

  // Live: new messages, statuses, notes and ticket changes of this conversation.
  useEffect(() => {
    const hear = (frame) => {
      if (frame.type === "reload") {
        reload();
        loadNewest();
        return;
      }
      if (frame.type !== "event" || frame.conversation_id !== id) return;
      if (frame.event === "message.created") {
        const message = frame.data.message;
        setMessages((all) => (all.some((m) => m.seq === message.seq) ? all : [...all, message]));
      } else if (frame.event === "message.deleted") {
        const gone = frame.data.seq;
        const placeholder = { type: "unsupported", provider_type: "deleted", raw: null };
        setMessages((all) => all.map((m) => (m.seq === gone ? { ...m, content: placeholder } : m)));
      } else if (frame.event === "message.status_updated") {
        const update = frame.data;
        setMessages((all) => all.map((m) => (m.id === update.message_id ? { ...m, status: update.status } : m)));
      } else if (frame.event === "ticket.note_added") {
        addNotes([noteOf(frame)]);
      } else {
        reload();
      }
    };
    listeners.add(hear);
    return () => listeners.delete(hear);
  }, [id]);

  const [loadingOlder, setLoadingOlder] = useState(false);
  const loadOlder = async () => {
    if (loadingOlder || !older) return;
    setLoadingOlder(true);
    try {
      const page = await api(`/conversations/${id}/messages?before=${older}&limit=50`);
      setMessages((all) => [...page.items.filter((m) => !all.some((a) => a.seq === m.seq)), ...all]);
      setOlder(page.next_cursor);
      const first = page.items[0]?.seq;
      if (first != null) {
        const until = page.items[page.items.length - 1].seq;
        addNotes((await notesAfter(id, Math.max(0, first - 1))).filter((n) => n.seq < until));
      }
    } catch (error) {
      setProblem(error.message);
    } finally {
      setLoadingOlder(false);
    }
  };

  if (!conversation) return html`<p>${problem || "…"}</p>`;
  const name = conversation.contact.name || conversation.contact.address;
  const timeline = [
    ...messages.map((m) => ({ seq: m.seq, view: html`<${Message} key=${`m${m.seq}`} conversationId=${id} message=${m} />` })),
    ...notes.map((n) => ({ seq: n.seq, view: html`<${Note} key=${`n${n.seq}`} note=${n} />` })),
  ].sort((a, b) => a.seq - b.seq);
  const sent = (message) => setMessages((all) => (all.some((m) => m.seq === message.seq) ? all : [...all, message]));
  return html`<div class=${`conversation-layout ${details ? "with-details" : ""}`}>
    <section class="conversation-screen" data-testid="conversation" aria-label=${name}>
      <header>
        <a href="#/" class="back" aria-label=${t.inbox}>←</a>
        <h2>${name}</h2>
        <span class=${`status status-${conversation.status}`}>${t.status[conversation.status] || conversation.status}</span>
        <button type="button" class="secondary details-toggle" aria-expanded=${details} data-testid="details"
          onClick=${() => setDetails(!details)}>${t.details}</button>
      </header>
      ${older && html`<button type="button" class="older" onClick=${loadOlder}>${t.older}</button>`}
      <ol class="messages" aria-live="polite">${timeline.map((item) => item.view)}</ol>
      ${problem && html`<p role="alert" class="error">${problem}</p>`}
      <${Composer} conversation=${conversation} onSent=${sent} onNote=${() => {}} />
    </section>
    <aside class="details" aria-label=${t.details}>
      <${TicketPanel} key=${`t${id}`} conversation=${conversation} onChange=${setConversation} />
      <${ContactPanel} key=${`c${id}`} conversationId=${id} />
    </aside>
  </div>`;
}
