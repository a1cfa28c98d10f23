// The agent console: sign-in, then a shell with a side bar (inbox, connections, administration),
// live over the WebSocket. Preact with htm and signals as plain ES modules (no build step); it
// speaks only the public REST and WebSocket protocol.

import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { signal } from "@preact/signals";
import { live, session, signIn, signOut } from "./api.js";
import { Conversation, listeners } from "./conversation.js";
import { Connections } from "./connections.js";
import { Administration } from "./admin.js";
import { Inbox, onInboxEvent, socketState } from "./inbox.js";
import { t } from "./i18n.js";
import { html, administers, pairsPhones, loadWorkspace } from "./ui.js";

/** Where the console is: `#/` (the inbox), `#/conversations/<id>`, `#/connections`, `#/admin`. */
const route = signal(location.hash);
window.addEventListener("hashchange", () => (route.value = location.hash));

/** Every frame from the socket: the inbox, then the open screen's listeners, each called once. */
function onFrame(frame) {
  if (frame.type === "reload") loadWorkspace();
  onInboxEvent(frame);
  for (const hear of listeners) hear(frame);
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

/** The socket lives as long as the signed-in shell, whichever screen is open. */
function useLive() {
  useEffect(() => {
    loadWorkspace();
    const socket = live(onFrame, (state) => (socketState.value = state));
    window.conversaSocket = socket;
    return () => socket.stop();
  }, []);
}

function NavLink({ href, label, current, testid }) {
  return html`<a href=${href} aria-current=${current ? "page" : undefined} data-testid=${testid}>${label}</a>`;
}

function Forbidden() {
  return html`<section class="panel" data-testid="forbidden"><h2>${t.forbidden}</h2><p>${t.forbiddenDetail}</p></section>`;
}

function Screen({ hash }) {
  const open = hash.match(/^#\/conversations\/([0-9a-f-]+)$/);
  if (open) return html`<${Conversation} id=${open[1]} />`;
  if (hash.startsWith("#/connections")) return pairsPhones.value ? html`<${Connections} />` : html`<${Forbidden} />`;
  if (hash.startsWith("#/admin")) return administers.value ? html`<${Administration} />` : html`<${Forbidden} />`;
  return html`<${Inbox} />`;
}

function Shell() {
  useLive();
  const agent = session.value.agent;
  const hash = route.value;
  const inInbox = !hash.startsWith("#/connections") && !hash.startsWith("#/admin");
  return html`<div class="shell">
    <a class="skip" href="#main">${t.skip}</a>
    <nav class="side" aria-label="Conversa">
      <strong class="brand">Conversa</strong>
      <div class="links">
        <${NavLink} href="#/" label=${t.inbox} current=${inInbox} testid="nav-inbox" />
        ${pairsPhones.value && html`<${NavLink} href="#/connections" label=${t.connections} current=${hash.startsWith("#/connections")} testid="nav-connections" />`}
        ${administers.value && html`<${NavLink} href="#/admin" label=${t.administration} current=${hash.startsWith("#/admin")} testid="nav-admin" />`}
      </div>
      <span class="who" data-testid="who">${agent?.name}</span>
      <button type="button" onClick=${() => signOut()} data-testid="sign-out">${t.signOut}</button>
    </nav>
    <main class="main" id="main" tabindex="-1"><${Screen} hash=${hash} /></main>
  </div>`;
}

function App() {
  return session.value ? html`<${Shell} />` : html`<${SignIn} />`;
}

render(html`<${App} />`, document.getElementById("app"));
