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

/** Trades the refresh token for a new pair; signs out when it cannot. */
async function refresh() {
  const current = session.value;
  if (!current) return false;
  const response = await fetch("/api/v1/auth/refresh", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ refresh_token: current.refresh_token }),
  });
  if (!response.ok) {
    keep(null);
    return false;
  }
  keep({ ...current, ...(await response.json()) });
  return true;
}

/** A JSON request with the session's token (refreshed once on a 401). */
export async function api(path, options = {}) {
  const send = () =>
    fetch(`/api/v1${path}`, {
      ...options,
      headers: {
        ...(options.body ? { "content-type": "application/json" } : {}),
        authorization: `Bearer ${session.value?.access_token}`,
      },
    });
  let response = await send();
  if (response.status === 401 && (await refresh())) response = await send();
  if (response.status === 401) keep(null);
  const body = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) throw Object.assign(new Error(body?.detail || String(response.status)), { body });
  return body;
}

/**
 * The live socket: subscribes, and after a drop reconnects and resumes from the last seq it saw of
 * each conversation (so nothing is missed and nothing reloaded). `onEvent` gets every event frame;
 * `onState` "live" or "reconnecting".
 */
export function live(onEvent, onState) {
  const positions = {};
  let since = null;
  let socket = null;
  let stopped = false;
  let held = false;
  let wait = 500;
  const open = () => {
    if (stopped || !session.value) return;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${location.host}/api/v1/ws?token=${encodeURIComponent(session.value.access_token)}`);
    socket.onmessage = (message) => {
      const frame = JSON.parse(message.data);
      if (frame.type === "ready") {
        const resume = since ? { since, positions } : undefined;
        socket.send(JSON.stringify(resume ? { type: "subscribe", resume } : { type: "subscribe" }));
      } else if (frame.type === "subscribed") {
        // Resume from here even if no event comes before a drop (the server allows for clock skew).
        since = since || new Date().toISOString();
        wait = 500;
        onState("live");
      } else if (frame.type === "event") {
        positions[frame.conversation_id] = Math.max(positions[frame.conversation_id] || 0, frame.seq);
        since = frame.at;
        onEvent(frame);
      } else if (frame.type === "resume_failed") {
        onEvent({ type: "reload" });
      }
    };
    socket.onclose = async (close) => {
      if (stopped) return;
      onState("reconnecting");
      if (held) return;
      // The access token may have expired: refresh before trying again.
      if (close.code === 4001 || close.code === 1008) await refresh();
      setTimeout(open, wait);
      wait = Math.min(wait * 2, 10000);
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
