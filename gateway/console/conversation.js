// The conversation screen: paged history with media and delivery ticks that advance live, a reply
// box, and the ticket's actions (take it, resolve it). Live events for this conversation arrive from
// the inbox's socket through `conversationEvents`.

import { useEffect, useState } from "preact/hooks";
import htm from "htm";
import { h } from "preact";
import { api, session } from "./api.js";
import { t } from "./i18n.js";

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

export function Conversation({ id }) {
  const [conversation, setConversation] = useState(null);
  const [messages, setMessages] = useState([]);
  const [older, setOlder] = useState(null);
  const [text, setText] = useState("");
  const [problem, setProblem] = useState(null);

  const [sending, setSending] = useState(false);
  const [draftId, setDraftId] = useState(() => crypto.randomUUID());
  const reload = () => api(`/conversations/${id}`).then(setConversation).catch((e) => setProblem(e.message));
  /** The newest page, merged by seq with what arrived live meanwhile. */
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
      })
      .catch((e) => setProblem(e.message));
  useEffect(() => {
    let gone = false;
    setMessages([]);
    reload();
    loadNewest(() => gone);
    return () => (gone = true);
  }, [id]);

  // Live: new messages, statuses, ticket changes of this conversation.
  useEffect(() => {
    const hear = (frame) => {
      if (frame.type === "reload") {
        reload();
        loadNewest();
        return;
      }
      if (frame.conversation_id !== id) return;
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
    } catch (error) {
      setProblem(error.message);
    } finally {
      setLoadingOlder(false);
    }
  };
  // One id per draft: a retried send (a double Enter, an unknown outcome) is never sent twice.
  const send = async (event) => {
    event.preventDefault();
    if (!text.trim() || sending) return;
    setSending(true);
    try {
      const sent = await api(`/conversations/${id}/messages`, {
        method: "POST",
        body: JSON.stringify({ text, client_message_id: draftId }),
      });
      setMessages((all) => (all.some((m) => m.seq === sent.seq) ? all : [...all, sent]));
      setText("");
      setDraftId(crypto.randomUUID());
      setProblem(null);
    } catch (error) {
      setProblem(error.message);
    } finally {
      setSending(false);
    }
  };
  const act = async (path, body) => {
    try {
      setConversation(await api(`/conversations/${id}/${path}`, { method: "POST", body: JSON.stringify(body) }));
      setProblem(null);
    } catch (error) {
      setProblem(error.message);
    }
  };

  if (!conversation) return html`<p>${problem || "…"}</p>`;
  const me = session.value?.agent?.id;
  return html`<section class="conversation-screen" data-testid="conversation" aria-label=${conversation.contact.name || conversation.contact.address}>
    <header>
      <a href="#/" class="back" aria-label=${t.inbox}>←</a>
      <h2>${conversation.contact.name || conversation.contact.address}</h2>
      <span class=${`status status-${conversation.status}`} data-testid="status">${t.status[conversation.status] || conversation.status}</span>
      <div class="actions">
        ${conversation.assignee !== me && html`<button type="button" data-testid="take" onClick=${() => act("assignments", { assignee_id: me })}>${t.take}</button>`}
        ${conversation.status !== "resolved" && html`<button type="button" data-testid="resolve" onClick=${() => act("toggle_status", { status: "resolved" })}>${t.resolve}</button>`}
      </div>
    </header>
    ${older && html`<button type="button" class="older" onClick=${loadOlder}>${t.older}</button>`}
    <ol class="messages" aria-live="polite">
      ${messages.map((m) => html`<${Message} key=${m.seq} conversationId=${id} message=${m} />`)}
    </ol>
    ${problem && html`<p role="alert" class="error">${problem}</p>`}
    <form class="reply" onSubmit=${send}>
      <textarea aria-label=${t.reply} placeholder=${t.reply} value=${text} onInput=${(e) => setText(e.target.value)} data-testid="reply"
        onKeyDown=${(e) => e.key === "Enter" && !e.shiftKey && !e.isComposing && (e.preventDefault(), send(e))}></textarea>
      <button type="submit" data-testid="send" disabled=${sending}>${t.send}</button>
    </form>
  </section>`;
}
