// The console's link to the relay: the operator token (from the link's #fragment, then
// out of the address bar), the subscription to CHANNEL:state, the commands published on
// CHANNEL:control with their acks, and what is known of the billboard's liveness.

import { RelayLink, relayUrl } from "./relay.js";
import { DEFAULT_CHANNEL, EVENT, controlChannel, stateChannel as stateChannelOf } from "./contract.js";
import { $, setText, tell } from "./console_dom.js";

// The billboard sends a state at least every second: three without one is a silence,
// and the console never says "live" from older news.
const SILENT_AFTER_S = 3;
export const PROBE_DEAD_MS = 4000; // a silent billboard: is the relay still there? (a ping)

export const channel = new URLSearchParams(location.search).get("channel") ?? DEFAULT_CHANNEL;
export const control = controlChannel(channel);
const stateChannel = stateChannelOf(channel);
const TOKEN_KEY = `dialjam.operator.${channel}`;

/** What the console knows: the latest state, when it came (performance.now()), and
 * whether the relay is there at all. */
export const live = { state: null, lastHeard: 0, relayOnline: false };

// -- the operator token ------------------------------------------------------------------

function takeToken() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const given = fragment.get("token");
  if (given !== null) {
    fragment.delete("token");
    const rest = fragment.toString();
    // Out of the address bar and the history: a shoulder or a shared screen must not see it.
    history.replaceState(null, "", location.pathname + location.search + (rest ? `#${rest}` : ""));
    if (given.trim()) store(given.trim());
  }
  try {
    return sessionStorage.getItem(TOKEN_KEY) || null;
  } catch {
    return given?.trim() || null;
  }
}

function store(value) {
  try {
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {}
}

let token = takeToken();
let pending = []; // commands sent, waiting for the relay's ack (answers come in order)
let tokenChecked = false;
let link = null;

export const hasToken = () => Boolean(token);

/** A token typed into the form: kept for this tab, and checked at once. */
export function useToken(value) {
  token = value;
  store(value);
  checkToken();
}

/** Ask the relay about the token at once (a ping carrying it), not at the first kick. */
function checkToken() {
  if (!token) return askToken();
  tokenChecked = false;
  link.send({ type: "ping", token });
}

export function askToken(why = null) {
  const form = $("token-form");
  form.hidden = false;
  document.body.dataset.token = "missing";
  if (why) {
    $("token-why").textContent = why;
    form.dataset.refused = "true";
  }
  $("token").focus();
}

function tokenRefused() {
  token = null;
  store(null);
  pending = [];
  const why = "The relay refused this operator token. Enter the token the relay printed at start.";
  tell(why, "error");
  askToken(why);
}

/** Publish a command on CHANNEL:control; `label` names it in "Sent: …" and refusals;
 * `done`, when given, is said instead of "Sent: …" once the relay takes it. */
export function command(name, args = {}, label = name, done = null) {
  if (!token) {
    tell("Enter the operator token first.", "error");
    askToken();
    return false;
  }
  const frame = {
    type: "publisher",
    id: control,
    data: { event: EVENT.command, name, args },
    token,
    ack: true,
  };
  if (!link.send(frame)) {
    tell(`Not sent (${label}): the relay is offline.`, "error");
    return false;
  }
  pending.push({ label, done });
  return true;
}

// -- the link ----------------------------------------------------------------------------

/** Connect; `onBillboard(data)` hears each event on CHANNEL:state, `onLiveness()` each
 * change of what is known of the relay and the billboard. */
export function connect({ onBillboard, onLiveness }) {
  const heard = (msg) => {
    switch (msg.type) {
      case "event":
        if (msg.id === stateChannel && msg.data) {
          if (msg.data.event === EVENT.state) {
            live.state = msg.data;
            live.lastHeard = performance.now();
          }
          onBillboard(msg.data);
        }
        break;
      case "ack":
        if (msg.id === control && pending.length) {
          const { label, done } = pending.shift();
          tell(done ?? `Sent: ${label}.`);
        }
        break;
      case "pong":
        if (token && !tokenChecked) {
          tokenChecked = true;
          document.body.dataset.token = "accepted";
          $("token-form").hidden = true;
        }
        break;
      case "error":
        if (msg.code === "unauthorised") tokenRefused();
        else {
          const what = pending.shift()?.label;
          tell(`The relay refused ${what ? `“${what}”` : "a request"}: ${msg.message ?? msg.code}`, "error");
        }
        break;
    }
  };
  link = new RelayLink(relayUrl(), {
    deadAfterMs: PROBE_DEAD_MS,
    onOpen() {
      // No token on the subscribe: a wrong one would refuse the subscription too.
      link.send({ type: "subscriber", id: stateChannel, v: 2 });
      pending = [];
      checkToken();
    },
    onMessage: heard,
    onStatus(status, retryMs) {
      const el = $("link");
      el.dataset.state = status;
      live.relayOnline = status === "online";
      // What the billboard said before is no news of it now: wait for a fresh state.
      if (!live.relayOnline) live.lastHeard = 0;
      onLiveness();
      if (status === "online") setText(el, "Relay: connected");
      else if (status === "connecting") setText(el, "Relay: connecting…");
      else setText(el, `Relay: offline — trying again in ${Math.ceil(retryMs / 1000)} s`);
    },
  });
  addEventListener("online", () => link.wake());
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") link.wake();
  });
  link.connect();
  if (!token) askToken();
  return link;
}

/** "ok" (a state within SILENT_AFTER_S), "stale", "waiting" (none yet on this link) or
 * "unknown" (the relay is offline: nothing can be known of the billboard). */
export function heardState() {
  if (!live.relayOnline) return "unknown";
  if (!live.lastHeard) return "waiting";
  return (performance.now() - live.lastHeard) / 1000 > SILENT_AFTER_S ? "stale" : "ok";
}

/** Seconds since the latest state, counted on only while the billboard is live (the
 * figures a state carries are then at most this old). */
export const sinceHeard = () => (heardState() === "ok" ? (performance.now() - live.lastHeard) / 1000 : 0);

export const ping = () => link?.ping();
