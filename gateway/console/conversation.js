// The conversation screen: paged history with media, delivery ticks that advance live and internal
// notes in their place, the reply box, and the side panel (the ticket and the contact). Live events
// reach it through `listeners`, which the shell calls once for every frame of the socket.

import { useEffect, useState } from "preact/hooks";
import { api } from "./api.js";
import { t } from "./i18n.js";
import { Composer } from "./composer.js";
import { Message, further } from "./message.js";
import { TicketPanel, ContactPanel } from "./ticket.js";
import { html, userName } from "./ui.js";

/** Who hears every live event (the open conversation picks its own); called for each one, in
 *  order, so none is lost between two renders. */
export const listeners = new Set();

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
          for (const m of live) {
            const read = bySeq.get(m.seq);
            // A status that arrived live while the page was read is newer than the page's.
            bySeq.set(m.seq, read ? { ...read, status: further(read.status, m.status) } : m);
          }
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
        // The customer wrote: the 24-hour window (and the ticket) may have changed.
        if (message.direction === "inbound") reload();
      } else if (frame.event === "message.deleted") {
        const gone = frame.data.seq;
        const placeholder = { type: "unsupported", provider_type: "deleted", raw: null };
        setMessages((all) => all.map((m) => (m.seq === gone ? { ...m, content: placeholder } : m)));
      } else if (frame.event === "message.status_updated") {
        const update = frame.data;
        setMessages((all) =>
          all.map((m) => (m.id === update.message_id ? { ...m, status: further(m.status, update.status) } : m)),
        );
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
      // Notes before the first message already shown belong to this older page.
      const shown = messages[0]?.seq ?? Infinity;
      const page = await api(`/conversations/${id}/messages?before=${older}&limit=50`);
      setMessages((all) => [...page.items.filter((m) => !all.some((a) => a.seq === m.seq)), ...all]);
      setOlder(page.next_cursor);
      const first = page.items[0]?.seq;
      if (first != null) addNotes((await notesAfter(id, Math.max(0, first - 1))).filter((n) => n.seq < shown));
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
      <${Composer} conversation=${conversation} onSent=${sent} />
    </section>
    <aside class="details" aria-label=${t.details}>
      <${TicketPanel} key=${`t${id}`} conversation=${conversation} onChange=${setConversation} />
      <${ContactPanel} key=${`c${id}`} conversationId=${id} />
    </aside>
  </div>`;
}
