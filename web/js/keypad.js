// The mobile keypad: every press is a `digit` event on the installation's channel;
// what the billboard says back (`assign`, `leave` on CHANNEL:state) is shown here.

import { RelayLink, relayUrl } from "./relay.js";
import { playTone } from "./dtmf.js";
import {
  CALLER_MAX_DIGITS,
  CHANNEL_ID,
  DEFAULT_CHANNEL,
  EVENT,
  KEYS,
  LEAVE_REASON,
  NICK_MAX,
  WEB_SOURCE,
  stateChannel,
} from "./contract.js";

const $ = (id) => document.getElementById(id);

// -- who and where ---------------------------------------------------------------------

// The relay gives this tab a caller session (POST /session): a signed pseudonym that
// the relay stamps on everything the tab sends, so nobody can play as someone else. It
// is kept across reloads (sessionStorage) and renewed for the same caller when it expires.
const SESSION_KEY = "dialjam.session";
let session = null; // {session, caller, expires}

function storedSession() {
  try {
    const s = JSON.parse(sessionStorage.getItem(SESSION_KEY) ?? "null");
    if (s && typeof s.session === "string" && typeof s.caller === "string") return s;
  } catch {}
  return null;
}

let asking = null;
/** A valid session, asked from the relay when there is none or it is about to expire. */
function ensureSession(force = false) {
  const now = Date.now() / 1000;
  if (!force && session && session.expires - now > 60) return Promise.resolve(session);
  if (asking) return asking;
  const body = { channel };
  if (session) body.renew = session.session;
  asking = fetch("/session", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
    cache: "no-store",
  })
    .then(async (r) => {
      const answer = await r.json().catch(() => ({}));
      if (r.ok && answer.type === "session") {
        session = { session: answer.session, caller: answer.caller, expires: answer.expires };
        try {
          sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
        } catch {}
        return session;
      }
      if (body.renew && (answer.code === "bad_session" || answer.code === "session_expired")) {
        session = null; // too old to renew: start afresh
        asking = null;
        return ensureSession(true);
      }
      if (answer.code === "rate_limited") say("Busy here — trying again in a moment", "");
      else if (answer.code === "unknown_channel")
        say("This installation is not playing", "Scan the code on the building again.");
      throw new Error(answer.code ?? `HTTP ${r.status}`);
    })
    .finally(() => {
      asking = null;
    });
  return asking;
}

/** A nickname as the facade may show it: letters, digits and single spaces, ≤ 16. */
function cleanNick(text) {
  return text.replace(/[^\p{L}\p{N} ]/gu, "").replace(/ {2,}/g, " ").slice(0, NICK_MAX);
}

function ordinal(n) {
  const tens = n % 100;
  const suffix = tens >= 11 && tens <= 13 ? "th" : ["th", "st", "nd", "rd"][n % 10] ?? "th";
  return `${n}${suffix}`;
}

const channel = new URLSearchParams(location.search).get("channel") ?? DEFAULT_CHANNEL;
session = storedSession();
const stored = (key, fallback) => {
  try {
    return localStorage.getItem(key) ?? fallback;
  } catch {
    return fallback; // storage can be disabled (private modes); the page still plays
  }
};
const store = (key, value) => {
  try {
    localStorage.setItem(key, value);
  } catch {}
};
let nick = cleanNick(stored("dialjam.nick", "")).trim() || null;
let tones = stored("dialjam.tones", "on") !== "off";
let missed = false; // a key was pressed while offline

// -- what the person sees ---------------------------------------------------------------

function setLink(state, text) {
  const el = $("link");
  el.dataset.state = state;
  el.textContent = text;
}

function say(main, more = "", color = null, extra = {}) {
  const box = $("said");
  if (!/^#[0-9a-fA-F]{6}$/.test(color ?? "")) color = null; // a colour, never url(…)
  $("said-main").textContent = main;
  $("said-more").textContent = more;
  box.dataset.track = extra.track ?? "";
  box.dataset.line = extra.line ?? "";
  box.dataset.color = color ?? "";
  box.style.setProperty("--track", color ?? "transparent");
  document.documentElement.style.setProperty("--accent", color ?? "");
}

function heard(msg) {
  if (msg.type === "error") {
    if (msg.code === "rate_limited") say("Slow down a little", "Some keys were not played.");
    else if (msg.code === "bad_session" || msg.code === "session_expired")
      ensureSession(true).then(join, () => {});
    return;
  }
  if (msg.type !== "event" || msg.id !== stateChannel(channel)) return;
  const data = msg.data;
  if (!data || !session || data.caller !== session.caller) return; // `state` and others' news
  if (data.event === EVENT.assign) {
    if (data.track) {
      say(`You are the ${data.track}`, "Your keys play on the building in this colour.", data.color, {
        track: data.track,
      });
    } else if (data.line > 0) {
      say(`You are ${ordinal(data.line)} in line`, "You will get an instrument when one is free. Keep this page open.", null, {
        line: String(data.line),
      });
    }
  } else if (data.event === EVENT.leave) {
    if (data.reason === LEAVE_REASON.kicked) say("You were removed by the operator", "Please try again later.");
    else if (data.reason === LEAVE_REASON.full)
      say("The line is full", "Many people are playing. Try again in a few minutes.");
    else say("Your turn is over — press a key to play again", "Others were waiting, or you were quiet for a while.");
  }
}

// -- the relay -------------------------------------------------------------------------

const link = new RelayLink(relayUrl(), {
  onOpen() {
    // Subscribe before joining, so the billboard's answer to the join reaches us.
    // NAME:state must itself be a valid id (≤ 64 characters).
    const state = stateChannel(channel);
    if (CHANNEL_ID.test(state)) link.send({ type: "subscriber", id: state, v: 2 });
    if (missed) say("Back online — press a key to play");
    missed = false;
    ensureSession().then(join, () => {}); // renews an expiring session first
  },
  onMessage: heard,
  onStatus(status, retryMs) {
    if (status === "online") setLink("online", `Connected — playing on “${channel}”`);
    else if (status === "connecting") setLink("connecting", "Connecting to the installation…");
    else
      setLink(
        "offline",
        `The installation is offline. Trying again in ${Math.ceil(retryMs / 1000)} s. ` +
          "Keys pressed now are not played later.",
      );
  },
});

function publish(data) {
  // The relay puts this session's caller on the event, whatever it says.
  if (!session) {
    ensureSession().then(join, () => {});
    return link.online;
  }
  return link.send({ type: "publisher", id: channel, session: session.session, data });
}

function join() {
  // A second join is harmless: the billboard refreshes the caller and tells its place again.
  publish({ event: EVENT.join, source: WEB_SOURCE, nick });
}

// -- keys ------------------------------------------------------------------------------

function press(key) {
  const button = document.querySelector(`[data-key="${CSS.escape(key)}"]`);
  button?.classList.add("down");
  setTimeout(() => button?.classList.remove("down"), 120);
  navigator.vibrate?.(15);
  if (tones) playTone(key);
  // Music is live: a key pressed while offline is dropped, never replayed later.
  if (!publish({ event: EVENT.digit, digit: key, source: WEB_SOURCE })) {
    say("Not played: the installation is offline", "Keys pressed now are not played later.");
    missed = true;
  }
}

function start() {
  if (!CHANNEL_ID.test(channel)) {
    setLink("offline", "This link's channel name is not valid. Scan the code on the building again.");
    for (const b of document.querySelectorAll("#pad button")) b.disabled = true;
    return;
  }

  const pad = $("pad");
  // Press on pointerdown, not click: a click waits for the finger to lift, and every
  // millisecond counts on a shared beat.
  pad.addEventListener("pointerdown", (e) => {
    const key = e.target.closest("[data-key]")?.dataset.key;
    if (key && e.button === 0) press(key);
  });
  // Enter or Space on a focused key is a click with detail 0 (no pointer involved).
  pad.addEventListener("click", (e) => {
    const key = e.target.closest("[data-key]")?.dataset.key;
    if (key && e.detail === 0) press(key);
  });
  document.addEventListener("keydown", (e) => {
    if (e.repeat || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.target instanceof HTMLInputElement) return; // typing a nickname
    if (KEYS.includes(e.key) && e.key.length === 1) {
      e.preventDefault();
      press(e.key);
    }
  });

  const tonesButton = $("tones");
  const showTones = () => tonesButton.setAttribute("aria-pressed", String(tones));
  showTones();
  tonesButton.addEventListener("click", () => {
    tones = !tones;
    store("dialjam.tones", tones ? "on" : "off");
    showTones();
  });

  const input = $("nick");
  input.value = nick ?? "";
  input.addEventListener("input", () => {
    const clean = cleanNick(input.value);
    if (clean !== input.value) input.value = clean;
  });
  const saveNick = (e) => {
    e?.preventDefault();
    const next = cleanNick(input.value).trim() || null;
    input.value = next ?? "";
    if ((next?.match(/\p{N}/gu)?.length ?? 0) > CALLER_MAX_DIGITS) {
      // The billboard refuses these too: a phone number must never reach the building.
      $("nick-help").textContent = "At most 4 digits: a nickname must not look like a phone number.";
      return;
    }
    if (next === nick) return;
    nick = next;
    store("dialjam.nick", nick ?? "");
    join(); // the billboard takes the new nickname from a fresh join
    $("nick-help").textContent = nick ? `Saved: the building shows “${nick}”.` : "Nickname cleared.";
  };
  $("nick-form").addEventListener("submit", saveNick);
  input.addEventListener("change", () => saveNick());

  // Phones suspend background tabs and drop networks: try again as soon as it helps.
  addEventListener("online", () => link.wake());
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") link.wake();
  });
  addEventListener("pageshow", (e) => {
    if (e.persisted) link.wake(); // back from the back-forward cache
  });
  addEventListener("pagehide", () => {
    // Best effort: the page may be gone before this frame leaves; the billboard frees an
    // idle caller's track by itself anyway.
    if (!session) return;
    const leave = {
      type: "publisher",
      id: channel,
      session: session.session,
      data: { event: EVENT.leave, reason: LEAVE_REASON.closed },
    };
    if (!link.send(leave)) return;
    link.drop();
  });

  // The session first: a key pressed as soon as the page says "connected" must play.
  const begin = (attempt = 0) =>
    ensureSession().then(
      () => link.connect(),
      () => {
        const delay = Math.min(10_000, 1000 * 2 ** attempt) * (0.5 + Math.random() / 2);
        setLink("offline", "Cannot reach the installation. Trying again…");
        setTimeout(() => begin(attempt + 1), delay);
      },
    );
  begin();
}

start();
