// The inbox: conversations of one view (all, mine, unassigned, a status, a department, a tag, or a
// search), kept live by the socket's events, with the badge counts of each view.

import { signal, computed } from "@preact/signals";
import { useState } from "preact/hooks";
import { api, session } from "./api.js";
import { t } from "./i18n.js";
import { html, departments, Tabs, SlaBadge, userName } from "./ui.js";

/** The view: `{kind, value}`, kind one of all, mine, unassigned, status, team, tag, q. */
export const view = signal({ kind: "all" });
const conversations = signal(new Map());
const counts = signal(null);
export const socketState = signal("reconnecting");
const loadingView = signal(false);
/** Where the view's next page starts (null at its end). */
const nextCursor = signal(null);
const problem = signal(null);
const sorted = computed(() =>
  [...conversations.value.values()].sort((a, b) => Date.parse(b.last_activity_at) - Date.parse(a.last_activity_at)),
);

const ACTIVE = new Set(["open", "in_progress", "waiting"]);

/** Whether a conversation belongs in the view (the server's rule, for live updates). */
function belongs(conversation, { kind, value }) {
  const active = ACTIVE.has(conversation.status);
  switch (kind) {
    case "mine":
      return active && conversation.assignee === session.value?.agent?.id;
    case "unassigned":
      return active && !conversation.assignee;
    case "status":
      return conversation.status === value;
    case "team":
      return conversation.team === value;
    case "tag":
      return (conversation.tags || []).includes(value);
    case "q":
      return conversations.value.has(conversation.id);
    default:
      return true;
  }
}

function query({ kind, value }) {
  const pick = { mine: "mine=true", unassigned: "unassigned=true" }[kind];
  if (pick) return `&${pick}`;
  if (kind === "all" || !value) return "";
  return `&${kind}=${encodeURIComponent(value)}`;
}

/** Conversations read one by one while the view's page was being read (they may be newer). */
const touched = new Set();

/** Keeps the newer of two copies of a conversation (answers can arrive out of order). */
function upsert(conversation) {
  touched.add(conversation.id);
  const known = conversations.value.get(conversation.id);
  if (known && known.last_seq > conversation.last_seq) return;
  const next = new Map(conversations.value);
  if (belongs(conversation, view.value)) next.set(conversation.id, conversation);
  else next.delete(conversation.id);
  conversations.value = next;
}

function forget(id) {
  if (!conversations.value.has(id)) return;
  const next = new Map(conversations.value);
  next.delete(id);
  conversations.value = next;
}

/** Reads the view's first page (once the socket is subscribed, so nothing falls between). */
let loading = 0;
export async function loadInbox() {
  const round = ++loading;
  const current = view.value;
  touched.clear();
  loadingView.value = true;
  try {
    const page = await api(`/conversations?limit=100${query(current)}`);
    if (round !== loading) return;
    // The page, except where a copy read live meanwhile is newer (or was not in the page yet).
    const next = new Map(page.items.map((c) => [c.id, c]));
    for (const id of touched) {
      const live = conversations.value.get(id);
      if (live && (!next.has(id) || next.get(id).last_seq < live.last_seq)) next.set(id, live);
    }
    conversations.value = next;
    nextCursor.value = page.next_cursor;
    problem.value = null;
  } catch (error) {
    if (round === loading) problem.value = error.message;
  } finally {
    if (round === loading) loadingView.value = false;
  }
  refreshCounts();
}

/** Adds the view's next page (entries already there keep the newer copy). */
async function loadMore() {
  const round = loading;
  const cursor = nextCursor.value;
  if (!cursor) return;
  try {
    const page = await api(`/conversations?limit=100&cursor=${encodeURIComponent(cursor)}${query(view.value)}`);
    if (round !== loading) return;
    // The server put them in the view (a search's rule is its own): only an older copy is replaced.
    const next = new Map(conversations.value);
    for (const c of page.items) if (!(next.get(c.id)?.last_seq > c.last_seq)) next.set(c.id, c);
    conversations.value = next;
    nextCursor.value = page.next_cursor;
  } catch (error) {
    problem.value = error.message;
  }
}

/** Forgets the signed-in user's inbox (on sign-out). */
export function resetInbox() {
  loading += 1;
  view.value = { kind: "all" };
  conversations.value = new Map();
  counts.value = null;
  problem.value = null;
  nextCursor.value = null;
  touched.clear();
}

export function choose(next) {
  view.value = next;
  conversations.value = new Map();
  loadInbox();
}

/** One read of the counts at a time; a burst of events costs one more. */
let countsBusy = false;
let countsDirty = false;
async function refreshCounts() {
  if (countsBusy) {
    countsDirty = true;
    return;
  }
  countsBusy = true;
  try {
    counts.value = await api("/conversations/counts");
  } catch {
    // The badges keep their last numbers.
  } finally {
    countsBusy = false;
    if (countsDirty) {
      countsDirty = false;
      refreshCounts();
    }
  }
}

/** One read per conversation at a time, so a burst of its events costs one more read, not one each. */
const inFlight = new Set();
const dirty = new Set();
export async function refreshEntry(id) {
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

/** Applies one live event to the inbox. */
export function onInboxEvent(frame) {
  if (frame.type === "reload") {
    // Counted so a catch-up can be told from a full reload (the browser tests read it).
    if (frame.reason) window.conversaReloads = (window.conversaReloads || 0) + 1;
    loadInbox();
    return;
  }
  if (frame.type !== "event") return;
  if (frame.event === "conversation.deleted") forget(frame.conversation_id);
  else refreshEntry(frame.conversation_id);
  if (frame.event.startsWith("ticket.") || frame.event === "conversation.created") refreshCounts();
}

function ConversationItem({ conversation }) {
  const name = conversation.contact.name || conversation.contact.address;
  return html`<li class="conversation" data-testid="conversation-item" data-id=${conversation.id}>
    <a href=${`#/conversations/${conversation.id}`}>
      <span class="name">${name}</span>
      <span class=${`status status-${conversation.status}`}>${t.status[conversation.status] || conversation.status}</span>
      <span class="preview">${conversation.last_message_preview || t.noPreview}</span>
      <span class="facts">
        ${conversation.assignee && html`<span class="badge">${userName(conversation.assignee)}</span>`}
        ${(conversation.tags || []).map((tag) => html`<span class="badge tag">#${tag}</span>`)}
        <${SlaBadge} conversation=${conversation} />
      </span>
    </a>
  </li>`;
}

function Filters() {
  const [text, setText] = useState(view.value.kind === "q" ? view.value.value : "");
  const current = view.value;
  const pick = (event) => {
    const [kind, value] = event.target.value.split(":");
    choose(kind ? { kind, value } : { kind: "all" });
  };
  const selected = ["status", "team", "tag"].includes(current.kind) ? `${current.kind}:${current.value}` : "";
  const search = (event) => {
    event.preventDefault();
    const words = text.trim();
    // `#vip` is the tag view; other words search the messages.
    if (words.startsWith("#") && words.length > 1) choose({ kind: "tag", value: words.slice(1).toLowerCase() });
    else choose(words ? { kind: "q", value: words } : { kind: "all" });
  };
  const c = counts.value;
  return html`<div class="filters">
    <form role="search" onSubmit=${search}>
      <input type="search" aria-label=${t.search} placeholder=${t.search} value=${text} data-testid="search"
        onInput=${(e) => setText(e.target.value)} />
    </form>
    <select aria-label=${t.filter} value=${selected} onChange=${pick} data-testid="filter">
      <option value="">${t.noFilter}</option>
      <optgroup label=${t.statusLabel}>
        ${Object.entries(t.status).map(
          ([key, label]) => html`<option value=${`status:${key}`}>${label}${c?.status?.[key] != null ? ` (${c.status[key]})` : ""}</option>`,
        )}
      </optgroup>
      ${departments.value.length > 0 && html`<optgroup label=${t.department}>
        ${departments.value.map(
          (d) => html`<option value=${`team:${d.key}`}>${d.name}${c?.teams?.[d.key] != null ? ` (${c.teams[d.key]})` : ""}</option>`,
        )}
      </optgroup>`}
    </select>
  </div>`;
}

export function Inbox() {
  const c = counts.value;
  const tabs = [
    { key: "all", label: t.views.all, count: c?.all },
    { key: "mine", label: t.views.mine, count: c?.mine },
    { key: "unassigned", label: t.views.unassigned, count: c?.unassigned },
  ];
  const current = ["all", "mine", "unassigned"].includes(view.value.kind) ? view.value.kind : null;
  return html`<section class="inbox" data-testid="inbox" aria-label=${t.inbox} data-loading=${String(loadingView.value)} data-view=${view.value.kind}>
    <header>
      <h2>${t.inbox}</h2>
      <span class=${`socket socket-${socketState.value}`} data-testid="live-state" data-state=${socketState.value}>
        ${socketState.value === "live" ? t.live : t.reconnecting}
      </span>
    </header>
    <${Tabs} label=${t.views.label} items=${tabs} current=${current} onSelect=${(kind) => choose({ kind })} />
    <${Filters} />
    ${problem.value && html`<p role="alert" class="error">${problem.value}</p>`}
    ${sorted.value.length === 0
      ? html`<p class="empty">${t.empty}</p>`
      : html`<ul>${sorted.value.map((c) => html`<${ConversationItem} key=${c.id} conversation=${c} />`)}</ul>`}
    ${nextCursor.value && html`<button type="button" class="secondary more" onClick=${loadMore}>${t.more}</button>`}
  </section>`;
}
