// Administration › departments: the list, and a form for one department's members, business hours,
// SLA targets and how tickets are distributed (`manage_helpdesk`).

import { useState } from "preact/hooks";
import { api } from "./api.js";
import { t } from "./i18n.js";
import { html, users, departments, attempt, Field, Problem } from "./ui.js";

const DAYS = 7;

/** "PT15M" ⇄ 15 (minutes); a duration the form cannot show in minutes is kept as it was. */
const minutes = (duration) => {
  const m = /^PT(?:(\d+)H)?(?:(\d+)M)?$/.exec(duration || "");
  return m ? Number(m[1] || 0) * 60 + Number(m[2] || 0) : "";
};
const duration = (value) => (value === "" || value == null ? undefined : `PT${Number(value)}M`);
/** The field's duration, or the stored one when the field shows it unchanged (`PT90S` included). */
const kept = (field, stored) => (String(field ?? "") === String(minutes(stored)) ? stored || undefined : duration(field));
const hhmm = (time) => (time || "").slice(0, 5);

function DepartmentForm({ department, onDone }) {
  const fresh = !department;
  const d = department || { key: "", name: "", members: [], distribution: "manual", agent_capacity: 0 };
  const [problem, setProblem] = useState(null);
  const [members, setMembers] = useState(new Set(d.members || []));
  const weekly = d.hours?.weekly || Array.from({ length: DAYS }, () => []);
  const submit = (event) => {
    event.preventDefault();
    const f = new FormData(event.target);
    // The form edits each day's first window; a split shift's other windows are kept as they were.
    const days = Array.from({ length: DAYS }, (_, i) =>
      f.get(`open-${i}`)
        ? [{ start: f.get(`start-${i}`) || "08:00", end: f.get(`end-${i}`) || "18:00" }, ...(weekly[i] || []).slice(1)]
        : [],
    );
    const withHours = f.get("hours") === "on";
    const sla = {
      first_response: kept(f.get("first_response"), d.sla?.first_response),
      next_response: kept(f.get("next_response"), d.sla?.next_response),
      resolution: kept(f.get("resolution"), d.sla?.resolution),
      only_during_business_hours: f.get("business_only") === "on",
    };
    const body = {
      ...(fresh ? {} : d),
      key: fresh ? f.get("key") : d.key,
      name: f.get("name"),
      members: [...members],
      hours: withHours ? { time_zone: f.get("time_zone") || "America/Sao_Paulo", weekly: days, holidays: d.hours?.holidays || [] } : null,
      sla,
      distribution: f.get("distribution"),
      agent_capacity: Number(f.get("agent_capacity") || 0),
    };
    for (const server of ["tenant_id", "created_at", "updated_at"]) delete body[server];
    attempt(setProblem, async () => {
      const path = fresh ? "/departments" : `/departments/${encodeURIComponent(d.key)}`;
      await api(path, { method: fresh ? "POST" : "PUT", body: JSON.stringify(body) });
      onDone();
    });
  };
  const toggle = (id) => {
    const next = new Set(members);
    next.has(id) ? next.delete(id) : next.add(id);
    setMembers(next);
  };
  return html`<form class="panel form" onSubmit=${submit} data-testid="department-form">
    <h3>${fresh ? t.newDepartment : d.name}</h3>
    ${fresh && html`<${Field} label=${t.key}><input name="key" required pattern="[a-z0-9_-]{1,64}" /></${Field}>`}
    <${Field} label=${t.name}><input name="name" required value=${d.name} /></${Field}>
    <fieldset><legend>${t.members}</legend>
      ${users.value.map(
        (u) => html`<label class="check"><input type="checkbox" checked=${members.has(u.id)} onChange=${() => toggle(u.id)} /> ${u.name}</label>`,
      )}
    </fieldset>
    <fieldset><legend>${t.hours}</legend>
      <label class="check"><input type="checkbox" name="hours" checked=${!!d.hours} /> ${t.hoursLimited}</label>
      <${Field} label=${t.timeZone}><input name="time_zone" value=${d.hours?.time_zone || "America/Sao_Paulo"} /></${Field}>
      ${t.weekdays.map(
        (day, i) => html`<div class="day">
          <label class="check"><input type="checkbox" name=${`open-${i}`} checked=${(weekly[i] || []).length > 0} /> ${day}</label>
          <input type="time" name=${`start-${i}`} aria-label=${`${day} ${t.opens}`} value=${hhmm(weekly[i]?.[0]?.start) || "08:00"} />
          <input type="time" name=${`end-${i}`} aria-label=${`${day} ${t.closes}`} value=${hhmm(weekly[i]?.[0]?.end) || "18:00"} />
        </div>`,
      )}
    </fieldset>
    <fieldset><legend>SLA</legend>
      <${Field} label=${t.slaTarget.first_response + " (min)"}><input type="number" min="1" name="first_response" value=${minutes(d.sla?.first_response)} /></${Field}>
      <${Field} label=${t.slaTarget.next_response + " (min)"}><input type="number" min="1" name="next_response" value=${minutes(d.sla?.next_response)} /></${Field}>
      <${Field} label=${t.slaTarget.resolution + " (min)"}><input type="number" min="1" name="resolution" value=${minutes(d.sla?.resolution)} /></${Field}>
      <label class="check"><input type="checkbox" name="business_only" checked=${!!d.sla?.only_during_business_hours} /> ${t.businessOnly}</label>
    </fieldset>
    <${Field} label=${t.distribution}>
      <select name="distribution" value=${d.distribution || "manual"}>
        ${Object.entries(t.distributions).map(([key, label]) => html`<option value=${key}>${label}</option>`)}
      </select>
    </${Field}>
    <${Field} label=${t.capacity}><input type="number" min="0" name="agent_capacity" value=${d.agent_capacity || 0} /></${Field}>
    <div class="actions"><button type="submit" data-testid="save-department">${t.save}</button>
      <button type="button" class="secondary" onClick=${onDone}>${t.cancel}</button></div>
    <${Problem} text=${problem} />
  </form>`;
}

export function Departments() {
  const [editing, setEditing] = useState(undefined);
  const [problem, setProblem] = useState(null);
  const reload = () => attempt(setProblem, async () => (departments.value = await api("/departments")));
  const done = () => {
    setEditing(undefined);
    reload();
  };
  if (editing !== undefined) return html`<${DepartmentForm} department=${editing} onDone=${done} />`;
  return html`<div data-testid="departments">
    <div class="row"><button type="button" onClick=${() => setEditing(null)}>${t.newDepartment}</button></div>
    <${Problem} text=${problem} />
    <table class="grid">
      <thead><tr><th>${t.name}</th><th>${t.members}</th><th>${t.distribution}</th><th>SLA</th><th></th></tr></thead>
      <tbody>
        ${departments.value.map(
          (d) => html`<tr data-testid="department">
            <td>${d.name}</td><td>${(d.members || []).length}</td><td>${t.distributions[d.distribution] || d.distribution}</td>
            <td>${d.sla?.first_response ? `${minutes(d.sla.first_response)} min` : "—"}</td>
            <td><button type="button" class="secondary" onClick=${() => setEditing(d)}>${t.edit}</button></td>
          </tr>`,
        )}
      </tbody>
    </table>
  </div>`;
}
