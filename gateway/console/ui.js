// Reusable pieces of the console: the `html` tag, what the signed-in user may do (its role's
// permissions and the tenant's feature flags), shared lists (users, departments, connections) read
// once and refreshed on demand, and small components (tabs, a problem line, a badge, a field).

import { h } from "preact";
import { useEffect, useState } from "preact/hooks";
import { signal, computed } from "@preact/signals";
import htm from "htm";
import { api, session } from "./api.js";
import { t } from "./i18n.js";

export const html = htm.bind(h);

/** The signed-in user's permissions (from `GET /roles`) and the tenant's flags (`GET /features`). */
export const permissions = signal(new Set());
export const features = signal({});
/** The tenant's users, departments and connections, as lists. */
export const users = signal([]);
export const departments = signal([]);
export const connections = signal([]);

export const role = computed(() => session.value?.agent?.role);
export const can = (permission) => permissions.value.has(permission);
/** Admins and supervisors pair phones (they alone get QR codes). */
export const pairsPhones = computed(() => role.value === "admin" || role.value === "supervisor");
/** Whether any administration screen is open to this user. */
export const administers = computed(
  () => role.value === "admin" || can("manage_helpdesk") || can("read_audit_log"),
);

/** Whether what the user may do has been read once (screens wait for it before refusing). */
export const ready = signal(false);

/** Reads what the user may do and the shared lists; each failure leaves the previous value. */
export async function loadWorkspace() {
  const settle = (promise, apply) => promise.then(apply).catch(() => {});
  await Promise.all([
    settle(api("/roles"), (roles) => (permissions.value = new Set(roles[role.value] || []))),
    settle(api("/features"), (flags) => (features.value = flags)),
    settle(api("/users"), (list) => (users.value = list)),
    settle(api("/departments"), (list) => (departments.value = list)),
    settle(api("/connections"), (list) => (connections.value = list)),
  ]);
  ready.value = true;
}

/** Forgets the signed-in user's workspace (on sign-out, before another user signs in). */
export function resetWorkspace() {
  ready.value = false;
  permissions.value = new Set();
  features.value = {};
  users.value = [];
  departments.value = [];
  connections.value = [];
}

/** The time, moved on every 30 s so that deadlines shown on screen pass while they are looked at. */
export const now = signal(Date.now());
setInterval(() => (now.value = Date.now()), 30000);

export const userName = (id) => users.value.find((u) => u.id === id)?.name || t.someone;
export const departmentName = (key) => departments.value.find((d) => d.key === key)?.name || key;

/** A request's state for a component: `[value, reload, problem]`. */
export function useResource(path) {
  const [value, setValue] = useState(null);
  const [problem, setProblem] = useState(null);
  const [round, setRound] = useState(0);
  useEffect(() => {
    let gone = false;
    if (!path) return undefined;
    api(path)
      .then((v) => !gone && (setValue(v), setProblem(null)))
      .catch((e) => !gone && setProblem(e.message));
    return () => (gone = true);
  }, [path, round]);
  return [value, () => setRound((r) => r + 1), problem];
}

/** Runs `action`, reporting its failure through `setProblem`; true when it worked. */
export async function attempt(setProblem, action) {
  try {
    await action();
    setProblem(null);
    return true;
  } catch (error) {
    setProblem(error.message);
    return false;
  }
}

export function Problem({ text }) {
  return text ? html`<p role="alert" class="error">${text}</p>` : null;
}

/** Tabs as WAI-ARIA describes them: arrows move between tabs, the chosen one is focusable. */
export function Tabs({ label, items, current, onSelect }) {
  const keys = items.map((i) => i.key);
  const onKeyDown = (event) => {
    const at = Math.max(0, keys.indexOf(current));
    const step = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 }[event.key];
    if (!step) return;
    event.preventDefault();
    const next = keys[(at + step + keys.length) % keys.length];
    onSelect(next);
    event.currentTarget.querySelector(`[data-key="${next}"]`)?.focus();
  };
  return html`<div role="tablist" aria-label=${label} class="tabs" onKeyDown=${onKeyDown}>
    ${items.map(
      (item, i) => html`<button type="button" role="tab" data-key=${item.key} data-testid=${`tab-${item.key}`}
        aria-selected=${item.key === current} tabindex=${item.key === current || (!keys.includes(current) && i === 0) ? 0 : -1}
        onClick=${() => onSelect(item.key)}>
        ${item.label}${item.count != null && html` <span class="count">${item.count}</span>`}
      </button>`,
    )}
  </div>`;
}

export function Field({ label, children }) {
  return html`<label class="field"><span>${label}</span>${children}</label>`;
}

/** How a ticket's SLA stands: the first clock still running (or missed), with its due time. */
export function slaState(conversation, at = Date.now()) {
  const clocks = conversation.sla || {};
  for (const target of ["first_response", "next_response", "resolution"]) {
    const clock = clocks[target];
    if (!clock) continue;
    if (clock.state === "missed") return { target, state: "missed", due: clock.due };
    if (clock.state === "active" && clock.due) {
      const late = Date.parse(clock.due) <= at;
      return { target, state: late ? "missed" : "active", due: clock.due };
    }
  }
  return null;
}

export function SlaBadge({ conversation }) {
  const sla = slaState(conversation, now.value);
  if (!sla) return null;
  const due = new Date(sla.due).toLocaleString([], { dateStyle: "short", timeStyle: "short" });
  const words = sla.state === "missed" ? t.slaMissed : `${t.slaDue} ${due}`;
  return html`<span class=${`badge sla sla-${sla.state}`} data-testid="sla" data-state=${sla.state} title=${t.slaTarget[sla.target]}>
    ${t.slaTarget[sla.target]}: ${words}
  </span>`;
}
