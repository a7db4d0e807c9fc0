// The mobile keypad. Opening it takes no track: it listens on CHANNEL:callers (its
// own caller's news and a small digest, never the whole show) and joins on the first
// key pressed; every press is then a `digit` on the installation's channel. Every
// state is said plainly in #said (#said-main is the live region a screen reader reads).

import { RelayLink, relayUrl } from "./relay.js";
import { preview } from "./preview.js";
import {
  CALLER_MAX_DIGITS,
  CHANNEL_ID,
  DEFAULT_CHANNEL,
  DIGEST_KEEPALIVE_S,
  EVENT,
  KEYS,
  LEAVE_REASON,
  NICK_MAX,
  NOTICE,
  PLAY_MODE,
  WEB_SOURCE,
  callersChannel,
} from "./contract.js";

const $ = (id) => document.getElementById(id);

// -- storage (may be disabled in private modes: the page still plays) -------------------

const stored = (key, fallback) => {
  try {
    return localStorage.getItem(key) ?? fallback;
  } catch {
    return fallback;
  }
};
const store = (key, value) => {
  try {
    localStorage.setItem(key, value);
  } catch {}
};

// -- who and where ---------------------------------------------------------------------

// The relay gives this tab a caller session (POST /session): a signed pseudonym that
// the relay stamps on everything the tab sends and uses to hand it only its own news.
// It is kept across reloads (sessionStorage) and renewed for the same caller.
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
      if (answer.code === "unknown_channel") show("invalid", "This installation is not playing", "Scan the code on the building again.");
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

const clock = (s) => `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;

const channel = new URLSearchParams(location.search).get("channel") ?? DEFAULT_CHANNEL;
session = storedSession();
let nick = cleanNick(stored("dialjam.nick", "")).trim() || null;
let sound = stored("dialjam.sound", "on") !== "off";

// What the page knows: `joined` once a key was pressed (and until the turn ends).
const me = {
  joined: false,
  track: null,
  color: null,
  mode: null,
  region: null,
  line: 0,
  bannedUntil: 0, // Date.now() ms
  nudged: 0, // when a key was pressed while refused
  shift: 0,
  state: "ready",
  said: null, // "resending" or "lost": what the page last said about the keys themselves
};
let digest = null;
let digestAt = 0;
let online = false;

// -- what the person sees ---------------------------------------------------------------

const KEYS_HELP = {
  [PLAY_MODE.drums]: "Each key picks a beat · # a fill · * an accent",
  [PLAY_MODE.scale]: "1–9 and 0 play notes of the scale · * lower · # higher",
  [PLAY_MODE.chord_tones]: "1–9 and 0 play notes of the chord · * lower · # higher",
  [PLAY_MODE.chord]: "1–9 and 0 play the chord in new shapes · * lower · # higher",
};

function where() {
  if (!me.track) return "";
  if (!me.region) return "Watch for your colour on the building.";
  const [first, count] = me.region;
  const of = digest?.bays ? ` of ${digest.bays}` : "";
  const windows =
    count > 1 ? `windows ${first + 1}–${first + count}${of}` : `window ${first + 1}${of}`;
  return `Your part: ${windows}, from the left.`;
}

/** Say `main` (read out by screen readers) and `more`, in state `state`. */
function show(state, main, more = "", color = null) {
  me.state = state;
  me.said = null;
  const box = $("said");
  if (!/^#[0-9a-fA-F]{6}$/.test(color ?? "")) color = null; // a colour, never url(…)
  box.dataset.state = state;
  box.dataset.color = color ?? "";
  box.dataset.track = state === "playing" ? me.track ?? "" : "";
  box.dataset.line = state === "line" ? String(me.line) : "";
  box.style.setProperty("--track", color ?? "#444");
  document.documentElement.style.setProperty("--accent", color ?? "#ffffff");
  if ($("said-main").textContent !== main) $("said-main").textContent = main;
  $("said-more").textContent = more;
  $("keys-help").textContent = state === "playing" ? KEYS_HELP[me.mode] ?? "" : "";
  $("where").textContent = state === "playing" ? where() : "";
  $("pad").classList.toggle("waiting", state === "kicked");
}

function crowd() {
  if (!digest) return "Your keys play music on the building.";
  const playing = digest.playing === 1 ? "1 person plays" : `${digest.playing} people play`;
  return `${playing} now, ${digest.waiting} waiting · ${digest.tempo} bpm in ${digest.key} ${digest.scale}`;
}

/** The state the page rests in when nothing new was said. */
function settle() {
  if (!online) return;
  const left = Math.ceil((me.bannedUntil - Date.now()) / 1000);
  if (left > 0) {
    // A press while refused is answered for a few seconds, then the countdown goes on.
    const main = Date.now() - me.nudged < 4000 ? `Not yet — wait ${clock(left)}` : "The operator took your turn";
    return show("kicked", main, `You can play again in ${clock(left)}.`);
  }
  if (me.track) return show("playing", `You are the ${me.track}`, "", me.color);
  if (me.joined && me.line > 0) {
    const resting = digest?.paused ? "The building is resting: you keep your place." : "You get an instrument when one is free. Keep this page open.";
    return show("line", `You are ${ordinal(me.line)} in line`, resting);
  }
  if (me.joined) return show("joining", "Finding you an instrument…");
  if (digest?.paused) return show("resting", "The building is resting", "Press a key to wait in line for the next turn.");
  if (me.state === "full" || me.state === "over") return;
  show("ready", "Press any key to play", crowd());
}

function heard(msg) {
  if (msg.type === "ack") return answered(msg);
  if (msg.type === "error") {
    const entry = unanswered.get(msg.ref);
    unanswered.delete(msg.ref);
    if (msg.code === "backplane_unavailable") return entry ? resend(entry) : notPlayed();
    if (msg.code === "rate_limited") show(me.state, "Slow down a little", "Some keys were not played.");
    else if (msg.code === "bad_session" || msg.code === "session_expired")
      ensureSession(true).then(listen, () => {});
    return;
  }
  if (msg.type !== "event" || msg.id !== callersChannel(channel)) return;
  const data = msg.data ?? {};
  if (data.event === EVENT.digest) {
    digest = data;
    digestAt = Date.now();
    if (me.state === "ready" || me.state === "resting" || me.state === "line") settle();
    else if (me.state === "playing") $("where").textContent = where();
    return;
  }
  if (!session || data.caller !== session.caller) return; // the relay sends only ours
  if (data.event === EVENT.assign) {
    me.joined = true;
    me.track = data.track ?? null;
    me.color = data.color ?? null;
    me.mode = data.mode ?? me.mode;
    me.region = Array.isArray(data.region) ? data.region : null;
    me.line = data.line ?? 0;
    if (!me.track) me.shift = 0;
    settle();
  } else if (data.event === EVENT.leave) {
    Object.assign(me, { joined: false, track: null, color: null, region: null, line: 0, shift: 0 });
    if (data.reason === LEAVE_REASON.kicked) {
      me.bannedUntil = Date.now() + 1000 * Math.max(0, Number(data.ban_s) || 0);
      settle();
    } else if (data.reason === LEAVE_REASON.full) {
      show("full", "The line is full", "Many people are playing. Press a key to try again in a minute.");
    } else {
      show("over", "Your turn is over — press a key to play again", "Others were waiting, or you were quiet for a while.");
    }
  } else if (data.event === EVENT.notice && data.code === NOTICE.paused) {
    settle();
  } else if (data.event === EVENT.notice && data.code === NOTICE.unbanned) {
    // The operator undid the kick: the countdown ends now, and the page says so.
    me.bannedUntil = 0;
    show("lifted", "You may play again", "The operator let you back in. Press any key to play.");
  }
}

// -- the relay -------------------------------------------------------------------------

const link = new RelayLink(relayUrl(), {
  onOpen() {
    online = true;
    $("pad").classList.remove("offline");
    ensureSession().then(listen, () => {});
    settle();
  },
  onMessage: heard,
  onStatus(status, retryMs) {
    if (status === "online") setLink("online", `Connected to “${channel}”`);
    else if (status === "connecting") setLink("connecting", "Connecting…");
    else {
      online = false;
      unanswered.clear(); // their fate is unknown; the page says keys are not played
      $("pad").classList.add("offline");
      setLink("offline", `Offline — trying again in ${Math.ceil(retryMs / 1000)} s`);
      show("offline", "The installation is offline", "Keys pressed now are not played later.");
    }
  },
});

function setLink(state, text) {
  const el = $("link");
  el.dataset.state = state;
  el.textContent = text;
}

/** Hear this caller's news (and the digest): the relay knows the caller by the session. */
function listen() {
  if (!session) return;
  link.send({ type: "subscriber", id: callersChannel(channel), v: 2, session: session.session });
  if (me.joined) join(); // back after a drop: the billboard tells our place again
}

// -- what the relay has not answered yet ------------------------------------------------
// Every event goes with a number of its own ("ref") and asks for an ack: the relay
// answers each with an ack or an error that gives the number back. One refused with
// backplane_unavailable (the relays' shared store was away for a moment: nothing was
// played) is sent again, with growing waits, a few times while it still belongs to the
// music; past that the page says plainly that keys were not played.

const RESEND_TRIES = 4;
const RESEND_FIRST_MS = 250;
const RESEND_FRESH_MS = 8000; // a key pressed longer ago than this is not sent again
const ANSWER_WAIT_MS = 15_000; // unanswered this long: forgotten (the link said why)
let nextRef = 1;
const unanswered = new Map(); // ref → {data, pressedAt, sentAt, tries}
let resending = 0; // events waiting to be sent again

/** Send `entry` (its event, pressed at its time) with a new ref; false when offline. */
function sendTracked(entry) {
  // The relay puts this session's caller on the event, whatever it says.
  if (!session) return false;
  const ref = nextRef++;
  // "ack":"ref": the ack is the ref alone, all this page reads of it (and a third of the bytes).
  const frame = { type: "publisher", id: channel, session: session.session, data: entry.data, ack: "ref", ref };
  if (!link.send(frame)) return false;
  entry.sentAt = Date.now();
  unanswered.set(ref, entry);
  return true;
}

function publish(data) {
  return sendTracked({ data, pressedAt: Date.now(), sentAt: 0, tries: 0 });
}

function answered(msg) {
  const entry = unanswered.get(msg.ref);
  unanswered.delete(msg.ref);
  // The last of the keys sent again went through: back to what the page was saying.
  if (entry?.tries && !resending && me.said === "resending") settle();
}

function resend(entry) {
  if (entry.tries >= RESEND_TRIES || Date.now() - entry.pressedAt > RESEND_FRESH_MS) return notPlayed();
  const wait = RESEND_FIRST_MS * 2 ** entry.tries * (0.5 + Math.random() / 2);
  entry.tries += 1;
  resending += 1;
  say("resending", "Sending your keys again…", "The installation missed them for a moment.");
  setTimeout(() => {
    resending -= 1;
    if (!sendTracked(entry)) notPlayed();
  }, wait);
}

function notPlayed() {
  nudge();
  say("lost", "Some keys were not played", "The installation could not take them just now. Press again in a moment.");
}

/** A word about the keys themselves, in the state the page is in. */
function say(what, main, more) {
  show(me.state, main, more);
  me.said = what;
}

function join() {
  // A second join is harmless: the billboard refreshes the caller and tells its place again.
  return publish({ event: EVENT.join, source: WEB_SOURCE, nick });
}

// -- keys ------------------------------------------------------------------------------

function flash(key) {
  const button = document.querySelector(`#pad [data-key="${CSS.escape(key)}"]`);
  button?.classList.add("down");
  setTimeout(() => button?.classList.remove("down"), 160);
}

function nudge() {
  const box = $("said");
  box.classList.remove("nudge");
  void box.offsetWidth; // restart the animation
  box.classList.add("nudge");
}

function press(key) {
  flash(key);
  navigator.vibrate?.(12);
  const left = Math.ceil((me.bannedUntil - Date.now()) / 1000);
  if (left > 0) {
    // Not sent: the billboard would refuse it anyway. Say so, every time.
    nudge();
    me.nudged = Date.now();
    settle();
    return;
  }
  if (!online) {
    nudge();
    show("offline", "Not played: the installation is offline", "Keys pressed now are not played later.");
    return;
  }
  if (sound) preview(key, me.mode, me.track, me.shift);
  if (me.track && me.mode !== PLAY_MODE.drums && (key === "*" || key === "#"))
    me.shift = Math.max(-1, Math.min(1, me.shift + (key === "*" ? -1 : 1)));
  if (!me.joined) {
    // The first press takes a place: nobody who only looks holds a track.
    if (!join()) return;
    me.joined = true;
    settle();
  }
  publish({ event: EVENT.digit, digit: key, source: WEB_SOURCE });
}

// -- the nickname, asked once before the pad ------------------------------------------

function askNick(first) {
  document.body.classList.add("asking");
  $("nick-form").hidden = false;
  $("nick").value = nick ?? "";
  $("nick-skip").textContent = first ? "Skip" : "Cancel";
  $("nick").focus();
}

function doneNick() {
  store("dialjam.asked", "yes");
  document.body.classList.remove("asking");
  $("nick-form").hidden = true;
  $("nick-change").textContent = nick ? `Nickname: ${nick}` : "Nickname";
}

function start() {
  if (!CHANNEL_ID.test(channel)) {
    setLink("invalid", "Link not valid");
    show("invalid", "This link does not lead to a show", "Its channel name is not valid. Scan the code on the building again.");
    for (const b of document.querySelectorAll("button")) b.disabled = true;
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
    if (e.target instanceof HTMLInputElement || document.body.classList.contains("asking")) return;
    if (KEYS.includes(e.key) && e.key.length === 1) {
      e.preventDefault();
      press(e.key);
    }
  });

  const soundButton = $("sound");
  const showSound = () => soundButton.setAttribute("aria-pressed", String(sound));
  showSound();
  soundButton.addEventListener("click", () => {
    sound = !sound;
    store("dialjam.sound", sound ? "on" : "off");
    showSound();
  });

  const input = $("nick");
  input.addEventListener("input", () => {
    const clean = cleanNick(input.value);
    if (clean !== input.value) input.value = clean;
  });
  $("nick-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const next = cleanNick(input.value).trim() || null;
    if ((next?.match(/\p{N}/gu)?.length ?? 0) > CALLER_MAX_DIGITS) {
      // The billboard refuses these too: a phone number must never reach the building.
      $("nick-help").textContent = "At most 4 digits: a nickname must not look like a phone number.";
      return;
    }
    const changed = next !== nick;
    nick = next;
    store("dialjam.nick", nick ?? "");
    doneNick();
    if (changed && me.joined) join(); // the billboard takes the new nickname from a fresh join
  });
  $("nick-skip").addEventListener("click", doneNick);
  $("nick-change").addEventListener("click", () => askNick(false));
  if (stored("dialjam.asked", "") !== "yes" && !nick) askNick(true);
  else doneNick();

  // A kick's countdown, and a building that stopped sending its digest.
  setInterval(() => {
    if (me.state === "kicked") settle();
    for (const [ref, entry] of unanswered) if (Date.now() - entry.sentAt > ANSWER_WAIT_MS) unanswered.delete(ref);
    const quiet = online && digestAt && Date.now() - digestAt > 2.5 * DIGEST_KEEPALIVE_S * 1000;
    if (quiet) setLink("quiet", "The building is not answering right now");
  }, 1000);

  // Phones suspend background tabs and drop networks: try again as soon as it helps.
  addEventListener("online", () => link.wake());
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") link.wake();
  });
  addEventListener("pageshow", (e) => {
    if (e.persisted) link.wake(); // back from the back-forward cache
  });
  addEventListener("pagehide", () => {
    // Best effort, and only for a caller who took a place: the billboard frees an idle
    // caller's track by itself anyway.
    if (!me.joined || !publish({ event: EVENT.leave, reason: LEAVE_REASON.closed })) return;
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
