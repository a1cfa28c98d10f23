// The conversation's side panel: the ticket (number, status, SLA, priority, assignee, department,
// tags; take, assign, transfer with a note, wait, resolve, reopen) and the contact (details, custom
// fields, tags, notes). Each change goes to the ticket's REST route and comes back as the new state.

import { useRef, useState } from "preact/hooks";
import { api, session } from "./api.js";
import { t } from "./i18n.js";
import { html, can, users, departments, attempt, useResource, Field, Problem, SlaBadge } from "./ui.js";

const PRIORITIES = ["low", "normal", "high", "urgent"];

export function TicketPanel({ conversation, onChange }) {
  const [problem, setProblem] = useState(null);
  const [team, setTeam] = useState(conversation.team || "");
  const [note, setNote] = useState("");
  const [tag, setTag] = useState("");
  // Bumped after a refusal so the selects show the stored value again, not the refused choice.
  const [round, setRound] = useState(0);
  const panel = useRef(null);
  const me = session.value?.agent?.id;
  const manage = can("manage_tickets");
  const act = async (path, body) => {
    const done = await attempt(setProblem, async () =>
      onChange(await api(`/conversations/${conversation.id}/${path}`, { method: "POST", body: JSON.stringify(body) })),
    );
    if (!done) setRound((r) => r + 1);
    // A button that did its work may be gone (Take, Resolve): the focus stays in the panel.
    requestAnimationFrame(() => {
      if (!panel.current?.contains(document.activeElement)) panel.current?.focus();
    });
    return done;
  };
  const closed = conversation.status === "resolved" || conversation.status === "cancelled";
  const transfer = (event) => {
    event.preventDefault();
    act("transfer", { team_id: team || undefined, note: note.trim() || undefined }).then((ok) => ok && setNote(""));
  };
  const addTag = (event) => {
    event.preventDefault();
    const clean = tag.trim().replace(/^#/, "");
    if (clean) act("labels", { add: [clean] }).then((ok) => ok && setTag(""));
  };
  return html`<section class="panel ticket" aria-labelledby="ticket-title" data-testid="ticket" ref=${panel} tabindex="-1">
    <header class="row">
      <h3 id="ticket-title">${t.ticket} #${conversation.ticket_number}</h3>
      <span class=${`status status-${conversation.status}`} data-testid="status">${t.status[conversation.status] || conversation.status}</span>
    </header>
    <${SlaBadge} conversation=${conversation} />
    ${manage && html`<div class="actions wrap">
      ${conversation.assignee !== me && !closed && html`<button type="button" data-testid="take" onClick=${() => act("assignments", { assignee_id: me })}>${t.take}</button>`}
      ${!closed && conversation.status !== "waiting" && html`<button type="button" class="secondary" onClick=${() => act("toggle_status", { status: "waiting" })}>${t.wait}</button>`}
      ${!closed && html`<button type="button" data-testid="resolve" onClick=${() => act("toggle_status", { status: "resolved" })}>${t.resolve}</button>`}
      ${closed && html`<button type="button" data-testid="reopen" onClick=${() => act("toggle_status", { status: "open" })}>${t.reopen}</button>`}
    </div>`}
    <${Field} label=${t.assignee}>
      <select key=${`a${round}`} data-testid="assignee" value=${conversation.assignee || ""} disabled=${!manage || closed}
        onChange=${(e) => act("assignments", { assignee_id: e.target.value || null })}>
        <option value="">${t.nobody}</option>
        ${users.value.filter((u) => u.role !== "auditor").map((u) => html`<option value=${u.id}>${u.name}</option>`)}
      </select>
    </${Field}>
    <${Field} label=${t.priority}>
      <select key=${`p${round}`} data-testid="priority" value=${conversation.priority} disabled=${!manage || closed}
        onChange=${(e) => act("toggle_priority", { priority: e.target.value })}>
        ${PRIORITIES.map((p) => html`<option value=${p}>${t.priorities[p]}</option>`)}
      </select>
    </${Field}>
    ${manage && !closed && html`<form class="transfer" onSubmit=${transfer}>
      <${Field} label=${t.department}>
        <select data-testid="department" value=${team} onChange=${(e) => setTeam(e.target.value)}>
          <option value="">—</option>
          ${departments.value.map((d) => html`<option value=${d.key}>${d.name}</option>`)}
        </select>
      </${Field}>
      <${Field} label=${t.transferNote}><input value=${note} onInput=${(e) => setNote(e.target.value)} maxlength="1000" /></${Field}>
      <button type="submit" class="secondary" data-testid="transfer" disabled=${!team}>${t.transfer}</button>
    </form>`}
    <div class="tags">
      ${(conversation.tags || []).map(
        (name) => html`<span class="badge tag">#${name}
          ${manage && !closed && html`<button type="button" class="link" aria-label=${`${t.removeTag} ${name}`} onClick=${() => act("labels", { remove: [name] })}>×</button>`}
        </span>`,
      )}
      ${manage && !closed && html`<form onSubmit=${addTag} class="inline">
        <input aria-label=${t.addTag} placeholder=${t.addTag} value=${tag} onInput=${(e) => setTag(e.target.value)} maxlength="48" data-testid="tag" />
      </form>`}
    </div>
    <${Problem} text=${problem} />
  </section>`;
}

export function ContactPanel({ conversationId }) {
  const [contact, reload, failed] = useResource(`/conversations/${conversationId}/contact`);
  const [body, setBody] = useState("");
  const [problem, setProblem] = useState(null);
  if (!contact) return html`<section class="panel contact"><${Problem} text=${failed} /></section>`;
  const addNote = (event) => {
    event.preventDefault();
    if (!body.trim()) return;
    attempt(setProblem, async () => {
      await api(`/contacts/${contact.id}/notes`, { method: "POST", body: JSON.stringify({ body }) });
      setBody("");
      reload();
    });
  };
  return html`<section class="panel contact" aria-labelledby="contact-title" data-testid="contact">
    <h3 id="contact-title">${contact.name || t.contact}</h3>
    <dl>
      ${contact.email && html`<dt>${t.email}</dt><dd>${contact.email}</dd>`}
      ${contact.addresses.map((a) => html`<dt>${a.channel}</dt><dd>${a.address}</dd>`)}
      ${Object.entries(contact.custom_fields || {}).map(([k, v]) => html`<dt>${k}</dt><dd>${String(v)}</dd>`)}
    </dl>
    ${(contact.tags || []).map((name) => html`<span class="badge tag">#${name}</span>`)}
    <h4>${t.contactNotes}</h4>
    <ul class="notes">${(contact.notes || []).map((n) => html`<li>${n.body}</li>`)}</ul>
    ${can("edit_contacts") && html`<form onSubmit=${addNote} class="inline">
      <input aria-label=${t.addContactNote} placeholder=${t.addContactNote} value=${body} onInput=${(e) => setBody(e.target.value)} maxlength="4000" />
      <button type="submit" class="secondary">${t.add}</button>
    </form>`}
    <${Problem} text=${problem} />
  </section>`;
}
