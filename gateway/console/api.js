// The console's only way to the node: the public REST API and the agent WebSocket, as documented in
// the README. Credentials live in this tab's sessionStorage.

import { signal } from "@preact/signals";

const KEY = "conversa.session";

/** The signed-in session ({access_token, refresh_token, agent_id, …}) or null. */
export const session = signal(JSON.parse(sessionStorage.getItem(KEY) || "null"));

function keep(value) {
  session.value = value;
  if (value) sessionStorage.setItem(KEY, JSON.stringify(value));
  else sessionStorage.removeItem(KEY);
}

/** Signs in; throws on a refusal. */
export async function signIn(email, password) {
  const response = await fetch("/api/v1/auth/sign_in", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email, password, label: "console" }),
  });
  if (!response.ok) throw new Error(String(response.status));
  keep(await response.json());
}

export async function signOut() {
  const current = session.value;
  keep(null);
  if (current) {
    await fetch("/api/v1/auth/sign_out", {
      method: "POST",
      headers: { authorization: `Bearer ${current.access_token}` },
    }).catch(() => {});
  }
}

/** Trades the refresh token for a new pair, once for every caller that needs it at the same time
 *  (a refresh token works once: a second exchange would end the session). Signs out only when the
 *  server refuses the refresh token itself. */
let refreshing = null;
async function refresh() {
  const current = session.value;
  if (!current) return false;
  refreshing ??= (async () => {
    try {
      const response = await fetch("/api/v1/auth/refresh", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ refresh_token: current.refresh_token }),
      });
      if (response.status === 401) {
        keep(null);
        return false;
      }
      if (!response.ok) return false;
      keep({ ...current, ...(await response.json()) });
      return true;
    } catch {
      return false;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

function expired() {
  const at = session.value?.access_expires_at;
  return at ? Date.parse(at) <= Date.now() : false;
}

/** A request with the session's token, refreshed once on a 401; the raw response. */
export async function authorized(path, options = {}) {
  let token = session.value?.access_token;
  const send = () => {
    token = session.value?.access_token;
    return fetch(`/api/v1${path}`, {
      ...options,
      headers: {
        ...(options.body ? { "content-type": "application/json" } : {}),
        authorization: `Bearer ${token}`,
      },
    });
  };
  let response = await send();
  if (response.status === 401) {
    // Another request may have refreshed meanwhile: try the new token before refreshing again.
    const renewed = session.value && session.value.access_token !== token;
    if (renewed || (await refresh())) response = await send();
  }
  if (response.status === 401) keep(null);
  return response;
}

/** A JSON request with the session's token; throws the problem (its `body`) on a refusal. */
export async function api(path, options = {}) {
  const response = await authorized(path, options);
  const body = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) throw Object.assign(new Error(body?.detail || String(response.status)), { body });
  return body;
}

/**
 * The live socket: subscribes, and after a drop reconnects and resumes from the last seq it saw of
 * each conversation (so nothing is missed and nothing reloaded). `onEvent` gets every event and
 * notice frame;
 * `onState` "live" or "reconnecting".
 */
export function live(onEvent, onState) {
  let positions = {};
  let since = null;
  let subscribedOnce = false;
  let socket = null;
  let stopped = false;
  let held = false;
  let wait = 500;
  const open = () => {
    if (stopped || !session.value) return;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${location.host}/api/v1/ws?token=${encodeURIComponent(session.value.access_token)}`);
    let ready = false;
    socket.onmessage = (message) => {
      const frame = JSON.parse(message.data);
      if (frame.type === "ready") {
        ready = true;
        const resume = since ? { since, positions } : undefined;
        socket.send(JSON.stringify(resume ? { type: "subscribe", resume } : { type: "subscribe" }));
      } else if (frame.type === "subscribed") {
        // Resume from here even if no event comes before a drop (the server allows for clock skew).
        since = since || new Date().toISOString();
        wait = 500;
        onState("live");
        // The first time, read everything; after a resume, what is not replayed (notices) again.
        onEvent({ type: subscribedOnce ? "resumed" : "reload" });
        subscribedOnce = true;
      } else if (frame.type === "event") {
        positions[frame.conversation_id] = Math.max(positions[frame.conversation_id] || 0, frame.seq);
        if (!since || Date.parse(frame.at) > Date.parse(since)) since = frame.at;
        onEvent(frame);
      } else if (frame.type.startsWith("connection_")) {
        // Notices: a connection's state, its QR code (admins and supervisors), its removal.
        onEvent(frame);
      } else if (frame.type === "resume_failed") {
        // Too much was missed to replay: start afresh from the store.
        positions = {};
        since = null;
        onEvent({ type: "reload", reason: "resume_failed" });
      }
    };
    socket.onclose = async (close) => {
      if (stopped) return;
      onState("reconnecting");
      if (held) return;
      try {
        // Refused before `ready` (an upgrade answered 401), ended for its credential (4001), or
        // simply past its time: the access token needs refreshing before the next try.
        if (!ready || close.code === 4001 || expired()) await refresh();
      } finally {
        setTimeout(open, wait);
        wait = Math.min(wait * 2, 10000);
      }
    };
  };
  open();
  return {
    stop() {
      stopped = true;
      socket?.close();
    },
    /** Drops the socket as a network failure would, and stays away until `reconnect`. */
    drop() {
      held = true;
      socket?.close();
    },
    /** Comes back after `drop`, resuming from where it was. */
    reconnect() {
      held = false;
      open();
    },
  };
}
