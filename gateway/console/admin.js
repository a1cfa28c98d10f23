// Administration: departments (`manage_helpdesk`), users and their roles, each role's permissions
// and the tenant's feature flags (admins), and the audit log (`read_audit_log`). Only the sections
// the user may use are offered; the server refuses the rest anyway.

import { useRef, useState } from "preact/hooks";
import { api } from "./api.js";
import { t } from "./i18n.js";
import { Departments } from "./departments.js";
import {
  html, can, role, users, connections, features, attempt, useResource, loadWorkspace, Tabs, Problem,
} from "./ui.js";

const ROLES = ["admin", "supervisor", "agent", "auditor", "bot"];

function Users() {
  const [problem, setProblem] = useState(null);
  // Bumped after a refusal so the selects show the stored value again, not the refused choice.
  const [round, setRound] = useState(0);
  const admin = role.value === "admin";
  const change = async (id, patch) => {
    const done = await attempt(setProblem, async () => {
      await api(`/users/${id}`, { method: "PATCH", body: JSON.stringify(patch) });
      users.value = await api("/users");
    });
    if (!done) setRound((r) => r + 1);
  };
  return html`<div data-testid="users">
    <${Problem} text=${problem} />
    <table class="grid">
      <thead><tr><th>${t.name}</th><th>${t.role}</th><th>${t.ownConnection}</th></tr></thead>
      <tbody>
        ${users.value.map(
          (u) => html`<tr data-testid="user" key=${`${u.id}-${round}`}>
            <td>${u.name}</td>
            <td><select aria-label=${`${t.role}: ${u.name}`} value=${u.role} disabled=${!admin}
              onChange=${(e) => change(u.id, { role: e.target.value })}>
              ${ROLES.map((r) => html`<option value=${r}>${t.roles[r]}</option>`)}
            </select></td>
            <td><select aria-label=${`${t.ownConnection}: ${u.name}`} value=${u.default_connection || ""} disabled=${!admin}
              onChange=${(e) => change(u.id, { default_connection: e.target.value || null })}>
              <option value="">—</option>
              ${connections.value.map((c) => html`<option value=${c.id}>${c.name}</option>`)}
            </select></td>
          </tr>`,
        )}
      </tbody>
    </table>
  </div>`;
}

function Roles() {
  const [read, , failed] = useResource("/roles");
  const [saved, setSaved] = useState({});
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState(null);
  if (!read) return html`<${Problem} text=${failed} />`;
  // Each role's set as the server last answered it (the whole set is sent: one save at a time).
  const roles = { ...read, ...saved };
  const all = [...new Set(Object.values(roles).flat())];
  for (const name of Object.keys(t.permissions)) if (!all.includes(name)) all.push(name);
  const admin = role.value === "admin";
  const toggle = (r, permission, on) => {
    const next = on ? [...roles[r], permission] : roles[r].filter((p) => p !== permission);
    setBusy(true);
    attempt(setProblem, async () => {
      const stored = await api(`/roles/${r}`, { method: "PUT", body: JSON.stringify({ permissions: next }) });
      setSaved((all) => ({ ...all, [r]: stored }));
      loadWorkspace();
    }).finally(() => setBusy(false));
  };
  return html`<div data-testid="roles" class="scroll">
    <${Problem} text=${problem} />
    <table class="grid matrix">
      <thead><tr><th>${t.permission}</th>${ROLES.map((r) => html`<th>${t.roles[r]}</th>`)}</tr></thead>
      <tbody>
        ${all.map(
          (p) => html`<tr>
            <th scope="row">${t.permissions[p] || p}</th>
            ${ROLES.map(
              (r) => html`<td><input type="checkbox" aria-label=${`${t.roles[r]}: ${t.permissions[p] || p}`}
                checked=${(roles[r] || []).includes(p)} disabled=${!admin || r === "admin" || busy}
                onChange=${(e) => toggle(r, p, e.target.checked)} /></td>`,
            )}
          </tr>`,
        )}
      </tbody>
    </table>
  </div>`;
}

function Features() {
  const [problem, setProblem] = useState(null);
  const admin = role.value === "admin";
  const flip = (name, on) =>
    attempt(setProblem, async () => {
      features.value = await api("/features", { method: "PUT", body: JSON.stringify({ [name]: on }) });
    });
  return html`<div data-testid="features">
    <${Problem} text=${problem} />
    <ul class="flags">
      ${Object.entries(features.value).map(
        ([name, on]) => html`<li><label class="check">
          <input type="checkbox" role="switch" checked=${on} disabled=${!admin} data-testid=${`flag-${name}`}
            onChange=${(e) => flip(name, e.target.checked)} />
          ${t.flags[name] || name}</label></li>`,
      )}
    </ul>
  </div>`;
}

function Audit() {
  const [action, setAction] = useState("");
  const [pages, setPages] = useState([]);
  const path = `/audit?limit=50${action ? `&action=${encodeURIComponent(action)}` : ""}`;
  const [first, , failed] = useResource(path);
  const [problem, setProblem] = useState(null);
  const entries = first ? [...first.items, ...pages.flatMap((p) => p.items)] : [];
  const cursor = pages.length ? pages[pages.length - 1].next_cursor : first?.next_cursor;
  const more = () =>
    attempt(setProblem, async () => {
      const page = await api(`${path}&cursor=${encodeURIComponent(cursor)}`);
      // A page of the filter that was current when it was asked for, never of the next one.
      setPages((all) => (page && currentPath.current === path ? [...all, page] : all));
    });
  const currentPath = useRef(path);
  currentPath.current = path;
  const pick = (event) => {
    setPages([]);
    setAction(event.target.value);
  };
  return html`<div data-testid="audit">
    <select aria-label=${t.action} value=${action} onChange=${pick}>
      <option value="">${t.allActions}</option>
      ${t.auditActions.map((a) => html`<option value=${a}>${a}</option>`)}
    </select>
    <${Problem} text=${failed || problem} />
    <table class="grid">
      <thead><tr><th>${t.when}</th><th>${t.who}</th><th>${t.action}</th><th>${t.target}</th></tr></thead>
      <tbody>
        ${entries.map(
          (e) => html`<tr data-testid="audit-entry">
            <td>${new Date(e.at).toLocaleString()}</td>
            <td>${e.actor.agent_id ? users.value.find((u) => u.id === e.actor.agent_id)?.name || e.actor.agent_id : t.operator}</td>
            <td>${e.action}</td><td class="target">${e.target}</td>
          </tr>`,
        )}
      </tbody>
    </table>
    ${cursor && html`<button type="button" class="secondary" onClick=${more}>${t.more}</button>`}
  </div>`;
}

export function Administration() {
  const admin = role.value === "admin";
  const sections = [
    can("manage_helpdesk") && { key: "departments", label: t.departments, view: Departments },
    (admin || can("manage_helpdesk")) && { key: "users", label: t.users, view: Users },
    (admin || can("manage_helpdesk")) && { key: "roles", label: t.rolesTitle, view: Roles },
    admin && { key: "features", label: t.featuresTitle, view: Features },
    can("read_audit_log") && { key: "audit", label: t.audit, view: Audit },
  ].filter(Boolean);
  const [open, setOpen] = useState(sections[0]?.key);
  const current = sections.find((s) => s.key === open) || sections[0];
  return html`<section class="admin" data-testid="admin" aria-labelledby="admin-title">
    <h2 id="admin-title">${t.administration}</h2>
    <${Tabs} label=${t.administration} items=${sections} current=${current?.key} onSelect=${setOpen} />
    <div role="tabpanel" class="tabpanel">${current && html`<${current.view} />`}</div>
  </section>`;
}
