// The connections screen: each channel connection's state, live; pause and resume; create one; and
// pair a WhatsApp Web number (Evolution API, Z-API) by scanning the QR code, which updates live from
// the socket's `connection_qr` notices (Z-API posts none: its code is asked for again every 20 s).

import { useEffect, useState } from "preact/hooks";
import { api } from "./api.js";
import { listeners } from "./conversation.js";
import { t } from "./i18n.js";
import { html, can, connections, attempt, Field, Problem } from "./ui.js";

const SESSION = new Set(["evolution", "zapi"]);
const PAIRED = new Set(["connected", "paused"]);
/** Z-API renews its code about every 20 seconds and tells nobody. */
const ZAPI_EVERY_MS = 20000;

function replace(connection) {
  connections.value = connections.value.some((c) => c.id === connection.id)
    ? connections.value.map((c) => (c.id === connection.id ? connection : c))
    : [...connections.value, connection];
}

/** The code to scan: read once, then replaced by every notice for this connection. */
function Pairing({ connection }) {
  const [code, setCode] = useState(null);
  const [problem, setProblem] = useState(null);
  useEffect(() => {
    let gone = false;
    // A read answered after a newer notice must not bring the older code back.
    let round = 0;
    const read = () => {
      const mine = ++round;
      api(`/connections/${connection.id}/qr`)
        .then((answer) => !gone && mine === round && (setCode(answer.qr_code), setProblem(null)))
        .catch((error) => !gone && mine === round && setProblem(error.message));
    };
    read();
    const hear = (frame) => {
      if (frame.type === "connection_qr" && frame.connection_id === connection.id) {
        round += 1;
        setCode(frame.qr_code);
      }
      // Notices are not replayed: after the socket comes back, ask again.
      if (frame.type === "resumed" || frame.type === "reload") read();
    };
    listeners.add(hear);
    const timer = connection.provider === "zapi" ? setInterval(read, ZAPI_EVERY_MS) : null;
    return () => {
      gone = true;
      listeners.delete(hear);
      if (timer) clearInterval(timer);
    };
  }, [connection.id]);
  const image = code && code.startsWith("data:image/");
  return html`<div class="pairing" data-testid="pairing">
    <p>${t.scanHelp}</p>
    ${image && html`<img src=${code} alt=${t.qrAlt} data-testid="qr" width="240" height="240" />`}
    ${code && !image && html`<pre class="code" data-testid="qr-text">${code}</pre>`}
    ${!code && !problem && html`<p class="muted" data-testid="qr-waiting">${t.qrWaiting}</p>`}
    <${Problem} text=${problem} />
  </div>`;
}

function ConnectionCard({ connection }) {
  const [pairing, setPairing] = useState(false);
  const [problem, setProblem] = useState(null);
  const session = SESSION.has(connection.provider);
  const paused = connection.status === "paused";
  const change = (status) =>
    attempt(setProblem, async () =>
      replace(await api(`/connections/${connection.id}`, { method: "PATCH", body: JSON.stringify({ status }) })),
    );
  const remove = () =>
    confirm(t.removeConfirm) &&
    attempt(setProblem, async () => {
      await api(`/connections/${connection.id}`, { method: "DELETE" });
      connections.value = connections.value.filter((c) => c.id !== connection.id);
    });
  return html`<li class="card" data-testid="connection" data-id=${connection.id}>
    <header>
      <strong>${connection.name}</strong>
      <span class="muted">${t.providers[connection.provider] || connection.provider}</span>
      <span class=${`badge state-${connection.status}`} data-testid="connection-status" data-status=${connection.status}>
        ${t.connectionStatus[connection.status] || connection.status}
      </span>
    </header>
    <p class="muted">${connection.account_id}</p>
    <div class="actions">
      ${session && !PAIRED.has(connection.status) && html`<button type="button" data-testid="pair" aria-expanded=${pairing} onClick=${() => setPairing(!pairing)}>${t.pair}</button>`}
      ${can("configure_connections") && html`<button type="button" class="secondary" data-testid=${paused ? "resume" : "pause"} onClick=${() => change(paused ? "connected" : "paused")}>${paused ? t.resumeConnection : t.pause}</button>`}
      ${can("configure_connections") && html`<button type="button" class="danger" onClick=${remove}>${t.remove}</button>`}
    </div>
    ${pairing && !PAIRED.has(connection.status) && html`<${Pairing} connection=${connection} />`}
    <${Problem} text=${problem} />
  </li>`;
}

const FIELDS = {
  whatsapp_cloud: ["phone_number_id", "verify_token", "app_secret", "access_token"],
  messenger: ["account_id", "verify_token", "app_secret", "access_token"],
  instagram: ["account_id", "verify_token", "app_secret", "access_token"],
  zapi: ["instance_id", "instance_token", "client_token"],
};
const SECRET = new Set(["app_secret", "access_token", "instance_token", "client_token", "verify_token"]);

function CreateConnection({ onDone }) {
  const [provider, setProvider] = useState("whatsapp_cloud");
  const [problem, setProblem] = useState(null);
  const [created, setCreated] = useState(null);
  const submit = (event) => {
    event.preventDefault();
    const form = Object.fromEntries(new FormData(event.target));
    for (const key of Object.keys(form)) if (form[key] === "") delete form[key];
    attempt(setProblem, async () => {
      const made = await api("/connections", { method: "POST", body: JSON.stringify({ ...form, provider }) });
      setCreated(made);
      onDone();
    });
  };
  return html`<form class="panel form" onSubmit=${submit} data-testid="create-connection">
    <h3>${t.newConnection}</h3>
    <${Field} label=${t.name}><input name="name" required maxlength="256" /></${Field}>
    <${Field} label=${t.provider}>
      <select value=${provider} onChange=${(e) => setProvider(e.target.value)}>
        ${Object.keys(FIELDS).map((p) => html`<option value=${p}>${t.providers[p]}</option>`)}
      </select>
    </${Field}>
    ${FIELDS[provider].map(
      (name) => html`<${Field} key=${`${provider}-${name}`} label=${name}><input name=${name} type=${SECRET.has(name) ? "password" : "text"} autocomplete="off"
        required=${name !== "client_token"} maxlength="256" /></${Field}>`,
    )}
    <p class="muted">${t.evolutionByOperator}</p>
    <button type="submit">${t.create}</button>
    <${Problem} text=${problem} />
    ${created && html`<p class="note" data-testid="webhook-url">${t.webhookAt} <code>${location.origin}${created.webhook_path}</code></p>`}
  </form>`;
}

export function Connections() {
  const [problem, setProblem] = useState(null);
  const [creating, setCreating] = useState(false);
  const reload = () => attempt(setProblem, async () => (connections.value = await api("/connections")));
  useEffect(() => {
    reload();
    const hear = (frame) => {
      if (frame.type === "resumed" || frame.type === "reload") reload();
      if (frame.type === "connection_updated") replace(frame.connection);
      else if (frame.type === "connection_removed")
        connections.value = connections.value.filter((c) => c.id !== frame.connection_id);
    };
    listeners.add(hear);
    return () => listeners.delete(hear);
  }, []);
  return html`<section class="connections" data-testid="connections" aria-labelledby="connections-title">
    <header class="row">
      <h2 id="connections-title">${t.connections}</h2>
      ${can("configure_connections") && html`<button type="button" aria-expanded=${creating} data-testid="new-connection" onClick=${() => setCreating(!creating)}>${t.newConnection}</button>`}
    </header>
    ${creating && html`<${CreateConnection} onDone=${reload} />`}
    <${Problem} text=${problem} />
    ${connections.value.length === 0
      ? html`<p class="empty">${t.noConnections}</p>`
      : html`<ul class="cards">${connections.value.map((c) => html`<${ConnectionCard} key=${c.id} connection=${c} />`)}</ul>`}
  </section>`;
}
