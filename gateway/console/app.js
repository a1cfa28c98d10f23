// The agent console: sign-in, then the inbox, live over the WebSocket. Preact with htm and signals as
// plain ES modules (no build step); it speaks only the public REST and WebSocket protocol.

import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { signal, computed } from "@preact/signals";
import htm from "htm";
import { h } from "preact";
import { api, live, session, signIn, signOut } from "./api.js";
import { Conversation, listeners } from "./conversation.js";
import { t } from "./i18n.js";

const html = htm.bind(h);

/** The inbox: conversations by id, and the socket's state. */
const conversations = signal(new Map());
const socketState = signal("reconnecting");
const sorted = computed(() =>
  [...conversations.value.values()].sort((a, b) => Date.parse(b.last_activity_at) - Date.parse(a.last_activity_at)),
);

/** Keeps the newer of two copies of a conversation (answers can arrive out of order). */
function upsert(conversation) {
  const known = conversations.value.get(conversation.id);
  if (known && known.last_seq > conversation.last_seq) return;
  const next = new Map(conversations.value);
  next.set(conversation.id, conversation);
  conversations.value = next;
}

function forget(id) {
  const next = new Map(conversations.value);
  next.delete(id);
  conversations.value = next;
}

/** Reads the inbox's first page, once the socket is subscribed (so nothing falls between the
 *  two), keeping live copies that are newer. */
async function loadInbox() {
  const page = await api("/conversations?limit=100");
  for (const conversation of page.items) upsert(conversation);
}

/** Where the console is: `#/` (the inbox) or `#/conversations/<id>`. */
const route = signal(location.hash);
window.addEventListener("hashchange", () => (route.value = location.hash));

/** Applies one live event: the open conversation gets it, and its inbox entry is read again, one
 *  request at a time per conversation (a burst of events costs one more read, not one each). */
const inFlight = new Set();
const dirty = new Set();
function onEvent(frame) {
  for (const hear of listeners) hear(frame);
  if (frame.type === "reload") {
    // Counted so a catch-up can be told from a full reload (the browser tests read it).
    if (frame.reason) window.conversaReloads = (window.conversaReloads || 0) + 1;
    loadInbox().catch(() => {});
    return;
  }
  if (frame.event === "conversation.deleted") {
    forget(frame.conversation_id);
    return;
  }
  refreshEntry(frame.conversation_id);
}

async function refreshEntry(id) {
  if (inFlight.has(id)) {
    dirty.add(id);
    return;
  }
  inFlight.add(id);
  try {
    upsert(await api(`/conversations/${id}`));
  } catch (error) {
    if (error.body?.code === "conversation_not_found") forget(id);
  } finally {
    inFlight.delete(id);
    if (dirty.delete(id)) refreshEntry(id);
  }
}

function SignIn() {
  const [failed, setFailed] = useState(false);
  const submit = async (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    try {
      await signIn(form.get("email"), form.get("password"));
    } catch {
      setFailed(true);
    }
  };
  return html`<main class="sign-in">
    <form onSubmit=${submit} aria-labelledby="sign-in-title">
      <h1 id="sign-in-title">Conversa</h1>
      <label>${t.email}<input name="email" type="email" autocomplete="username" required data-testid="email" /></label>
      <label>${t.password}<input name="password" type="password" autocomplete="current-password" required data-testid="password" /></label>
      ${failed && html`<p role="alert" class="error">${t.signInFailed}</p>`}
      <button type="submit" data-testid="sign-in">${t.signIn}</button>
    </form>
  </main>`;
}

function ConversationItem({ conversation }) {
  const name = conversation.contact.name || conversation.contact.address;
  return html`<li class="conversation" data-testid="conversation-item" data-id=${conversation.id}>
    <a href=${`#/conversations/${conversation.id}`}>
      <span class="name">${name}</span>
      <span class=${`status status-${conversation.status}`}>${t.status[conversation.status] || conversation.status}</span>
      <span class="preview">${conversation.last_message_preview || t.noPreview}</span>
    </a>
  </li>`;
}

/** The socket lives as long as the signed-in shell, whichever screen is open. */
function useLive() {
  useEffect(() => {
    const socket = live(onEvent, (state) => (socketState.value = state));
    window.conversaSocket = socket;
    return () => socket.stop();
  }, []);
}

function Inbox() {
  return html`<section class="inbox" data-testid="inbox" aria-label=${t.inbox}>
    <header>
      <h2>${t.inbox}</h2>
      <span class=${`socket socket-${socketState.value}`} data-testid="live-state" data-state=${socketState.value}>
        ${socketState.value === "live" ? t.live : t.reconnecting}
      </span>
    </header>
    ${sorted.value.length === 0
      ? html`<p class="empty">${t.empty}</p>`
      : html`<ul>${sorted.value.map((c) => html`<${ConversationItem} key=${c.id} conversation=${c} />`)}</ul>`}
  </section>`;
}

function Shell() {
  useLive();
  const agent = session.value.agent;
  const open = route.value.match(/^#\/conversations\/([0-9a-f-]+)$/);
  return html`<div class="shell">
    <nav class="side" aria-label="Conversa">
      <strong class="brand">Conversa</strong>
      <a href="#/" aria-current=${route.value.startsWith("#/conversations/") ? undefined : "page"}>${t.inbox}</a>
      <span class="who" data-testid="who">${agent?.name}</span>
      <button type="button" onClick=${() => signOut()} data-testid="sign-out">${t.signOut}</button>
    </nav>
    <main class="main">${open ? html`<${Conversation} id=${open[1]} />` : html`<${Inbox} />`}</main>
  </div>`;
}

function App() {
  return session.value ? html`<${Shell} />` : html`<${SignIn} />`;
}

render(html`<${App} />`, document.getElementById("app"));
