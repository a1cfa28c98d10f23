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
import { Inbox, onInboxEvent, resetInbox, socketState } from "./inbox.js";
import { t } from "./i18n.js";
import { html, administers, pairsPhones, ready, loadWorkspace, resetWorkspace } from "./ui.js";

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
      <label>${t.email}<input name="email" type="email" autocomplete="username" required autofocus data-testid="email" /></label>
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
    return () => {
      socket.stop();
      // Nothing of this user stays for the next one to sign in on this tab.
      resetInbox();
      resetWorkspace();
    };
  }, []);
}

function NavLink({ href, label, current, testid }) {
  return html`<a href=${href} aria-current=${current ? "page" : undefined} data-testid=${testid}>${label}</a>`;
}

function Forbidden({ screen }) {
  return html`<section class="panel" data-testid="forbidden" data-screen=${screen}><h2>${t.forbidden}</h2><p>${t.forbiddenDetail}</p></section>`;
}

function Screen({ hash }) {
  const open = hash.match(/^#\/conversations\/([0-9a-f-]+)$/);
  // A conversation's screen is its own: nothing a late answer for another one brings can reach it.
  if (open) return html`<${Conversation} key=${open[1]} id=${open[1]} />`;
  const setup = hash.startsWith("#/connections") || hash.startsWith("#/admin");
  if (setup && !ready.value) return html`<p class="muted">…</p>`;
  if (hash.startsWith("#/connections"))
    return pairsPhones.value ? html`<${Connections} />` : html`<${Forbidden} screen="connections" />`;
  if (hash.startsWith("#/admin")) return administers.value ? html`<${Administration} />` : html`<${Forbidden} screen="admin" />`;
  return html`<${Inbox} />`;
}

/** After the keyboard (or a link) moves to another screen, focus goes to its content. */
function useFocusOnNavigation(hash) {
  const [first, setFirst] = useState(true);
  useEffect(() => {
    if (first) return setFirst(false);
    document.getElementById("main")?.focus({ preventScroll: true });
  }, [hash]);
}

/** The skip link moves the focus to the content, not the route. */
function skip(event) {
  event.preventDefault();
  document.getElementById("main")?.focus();
}

function Shell() {
  useLive();
  const agent = session.value.agent;
  const hash = route.value;
  useFocusOnNavigation(hash);
  const inInbox = !hash.startsWith("#/connections") && !hash.startsWith("#/admin");
  return html`<div class="shell">
    <a class="skip" href="#main" onClick=${skip}>${t.skip}</a>
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
