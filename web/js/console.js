// The operator's console: what the billboard says on CHANNEL:state (who plays, who
// waits, the music, its HUD), the relay's /healthz figures, and the operator's
// commands, published on CHANNEL:control with the operator token.

import { drawWindows } from "./facade_view.js";
import { RelayLink, relayUrl } from "./relay.js";
import {
  CHANNEL_ID,
  COMMAND,
  DEFAULT_CHANNEL,
  EVENT,
  KEY_NAMES,
  LEAVE_REASON,
  MAX_BPM,
  MIN_BPM,
  SCALE_NAMES,
  STYLE_NAMES,
  controlChannel,
  stateChannel as stateChannelOf,
} from "./contract.js";

const $ = (id) => document.getElementById(id);
const TEMPO_STEP = 4; // the billboard's + / − keys move this much too
// The billboard sends a state at least every second: three without one is a silence,
// and the console never says "live" from older news.
const SILENT_AFTER_S = 3;
const PROBE_DEAD_MS = 4000; // a silent billboard: is the relay still there? (a ping)
const ARM_MS = 3000; // a Kick arms; a second press this soon kicks
const QUIET_AFTER_S = 15; // a caller this long without a press is shown as quiet
const HEALTH_EVERY_MS = 2000;
const HOLD_MS = 2000; // a control just changed here is not overwritten by older states
// The keys and scales the engine plays (the contract's names), labelled as musicians
// read them: "C#" as "C♯ / D♭", "minor_pentatonic" as "Minor pentatonic".
const LETTERS = "CDEFGAB";
const keyLabel = (k) =>
  k.endsWith("#") ? `${k[0]}♯ / ${LETTERS[(LETTERS.indexOf(k[0]) + 1) % 7]}♭` : k;
const SCALE_LABELS = { pentatonic: "Major pentatonic" };
const scaleLabel = (s) =>
  SCALE_LABELS[s] ?? s.charAt(0).toUpperCase() + s.slice(1).replaceAll("_", " ");
const STYLE_LABELS = { pop: "Pop", house: "House", hiphop: "Hip-hop", none: "None: callers alone" };
const styleLabel = (s) => STYLE_LABELS[s] ?? s.charAt(0).toUpperCase() + s.slice(1);
const KEYS = KEY_NAMES.map((k) => [k, keyLabel(k)]);
const SCALES = SCALE_NAMES.map((s) => [s, scaleLabel(s)]);
const STYLES = STYLE_NAMES.map((s) => [s, styleLabel(s)]);

const channel = new URLSearchParams(location.search).get("channel") ?? DEFAULT_CHANNEL;
const control = controlChannel(channel);
const stateChannel = stateChannelOf(channel);
const TOKEN_KEY = `dialjam.operator.${channel}`;

// -- the operator token: from the link's #fragment, then out of the address bar --------

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

// -- small helpers ---------------------------------------------------------------------

const safeColor = (c) => (/^#[0-9a-fA-F]{6}$/.test(c ?? "") ? c : "#555555");

function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

function setAttr(el, name, value) {
  if (el.getAttribute(name) !== value) el.setAttribute(name, value);
}

function ordinal(n) {
  const tens = n % 100;
  const suffix = tens >= 11 && tens <= 13 ? "th" : ["th", "st", "nd", "rd"][n % 10] ?? "th";
  return `${n}${suffix}`;
}

let messageTimer = 0;
function tell(text, kind = "info") {
  const el = $("message");
  clearTimeout(messageTimer);
  el.hidden = false;
  el.dataset.kind = kind;
  el.textContent = text;
  if (kind !== "error") messageTimer = setTimeout(() => (el.hidden = true), 4000);
}

// A control changed here keeps its value until the billboard has caught up.
const held = new Map();
const hold = (el) => held.set(el, performance.now() + HOLD_MS);
const isHeld = (el) => document.activeElement === el && el.tagName === "INPUT" && el.type === "number"
  ? true
  : (held.get(el) ?? 0) > performance.now();

// -- the relay link --------------------------------------------------------------------

let pending = []; // commands sent, waiting for the relay's ack (answers come in order)
let tokenChecked = false;

let relayOnline = false;

const link = new RelayLink(relayUrl(), {
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
    relayOnline = status === "online";
    // What the billboard said before is no news of it now: wait for a fresh state.
    if (!relayOnline) lastHeard = 0;
    tickHeard();
    if (status === "online") setText(el, "Relay: connected");
    else if (status === "connecting") setText(el, "Relay: connecting…");
    else setText(el, `Relay: offline — trying again in ${Math.ceil(retryMs / 1000)} s`);
  },
});

/** Ask the relay about the token at once (a ping carrying it), not at the first kick. */
function checkToken() {
  if (!token) return askToken();
  tokenChecked = false;
  link.send({ type: "ping", token });
}

function askToken(why = null) {
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

function command(name, args = {}, label = name) {
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
  pending.push(label);
  return true;
}

function heard(msg) {
  switch (msg.type) {
    case "event":
      if (msg.id === stateChannel && msg.data) onBillboard(msg.data);
      break;
    case "ack":
      if (msg.id === control && pending.length) tell(`Sent: ${pending.shift()}.`);
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
        const what = pending.shift();
        tell(`The relay refused ${what ? `“${what}”` : "a request"}: ${msg.message ?? msg.code}`, "error");
      }
      break;
  }
}

// -- what the billboard says -----------------------------------------------------------

let state = null;
let lastHeard = 0; // performance.now() of the last state
const displays = new Map(); // caller → what the facade shows for them ("…12", a nickname)
const trackOf = new Map(); // caller → track name, from the latest state

function onBillboard(data) {
  if (data.event === EVENT.state) {
    state = data;
    lastHeard = performance.now();
    render();
    tickHeard();
    drawFacade();
  } else if (data.event === EVENT.leave && data.reason === LEAVE_REASON.kicked) {
    const who = displays.get(data.caller);
    tell(`${who ?? "A caller"} was removed.`);
  }
}

function render() {
  const s = state;
  renderTracks(s.tracks ?? []);
  // The billboard names waiting callers as the facade would ("…12" or a nickname).
  for (const w of Array.isArray(s.waiting) ? s.waiting : []) {
    if (w && typeof w.caller === "string" && typeof w.display === "string") {
      displays.set(w.caller, w.display);
    }
  }
  const line = Array.isArray(s.line) ? s.line : [];
  // `line` holds only the front of the line; `line_length` counts everyone waiting.
  renderLine(line, Math.max(line.length, Number(s.line_length) || 0));
  const tempo = Math.round(Number(s.tempo) || 0);
  for (const el of [$("tempo"), $("tempo-range")]) {
    if (!isHeld(el) && tempo && String(tempo) !== el.value) el.value = String(tempo);
  }
  if (!isHeld($("key")) && KEYS.some(([k]) => k === s.key)) $("key").value = s.key;
  if (!isHeld($("scale")) && SCALES.some(([k]) => k === s.scale)) $("scale").value = s.scale;
  // A billboard older than the style command sends none: the selector then stays as it is.
  if (!isHeld($("style")) && STYLES.some(([k]) => k === s.style)) $("style").value = s.style;
  if (!isHeld($("pause"))) setAttr($("pause"), "aria-pressed", String(Boolean(s.paused)));
  setText($("pause"), s.paused ? "New callers paused — resume" : "Pause new callers");
  const hud = s.hud ?? {};
  const ms = (v) => (typeof v === "number" ? `${v.toFixed(1)} ms` : "–");
  setText($("f-fps"), typeof hud.fps === "number" ? String(Math.round(hud.fps)) : "–");
  setText($("f-midi"), hud.midi_port ? String(hud.midi_port) : "none");
  setText($("f-latency"), ms(hud.latency_ms));
  setText($("f-late"), ms(hud.late_ms));
  setText($("f-relay"), hud.relay ? String(hud.relay) : "–");
  const scaleName = SCALES.find(([k]) => k === s.scale)?.[1] ?? String(s.scale ?? "");
  setText($("f-music"), `${tempo} BPM · ${s.key ?? "?"} ${scaleName.toLowerCase()}`);
}

// One row per track, kept across states: a focused Kick button stays focused.
const rows = new Map();

function trackRow(name) {
  let row = rows.get(name);
  if (row) return row;
  const li = document.createElement("li");
  li.className = "track";
  li.innerHTML =
    '<span class="swatch" aria-hidden="true"></span><span class="who"><b class="name"></b>' +
    '<span class="caller"></span><span class="activity"></span></span>' +
    '<span class="badge" hidden>muted</span>' +
    '<span class="actions"><button type="button" class="mute"></button>' +
    '<button type="button" class="kick">Kick</button></span>';
  row = {
    li,
    swatch: li.querySelector(".swatch"),
    name: li.querySelector(".name"),
    caller: li.querySelector(".caller"),
    activity: li.querySelector(".activity"),
    badge: li.querySelector(".badge"),
    mute: li.querySelector(".mute"),
    kick: li.querySelector(".kick"),
    data: null,
  };
  row.mute.addEventListener("click", () => {
    const t = row.data;
    if (!t?.caller) return;
    const on = !t.muted;
    if (command(COMMAND.mute, { caller: t.caller, on }, `${on ? "mute" : "unmute"} ${t.name}`)) {
      hold(row.mute);
      setAttr(row.mute, "aria-pressed", String(on));
    }
  });
  row.kick.addEventListener("click", () => {
    const t = row.data;
    if (t?.caller) kickPressed(row.kick, t.caller, `kick the ${t.name}`);
  });
  rows.set(name, row);
  return row;
}

function renderTracks(tracks) {
  const list = $("tracks");
  trackOf.clear();
  tracks.forEach((t, i) => {
    const row = trackRow(String(t.name));
    row.data = t;
    const who = t.caller ? String(t.display ?? "a caller") : null; // masked by the billboard
    if (t.caller) {
      displays.set(t.caller, who);
      trackOf.set(t.caller, t.name);
    }
    row.swatch.style.background = safeColor(t.color);
    setText(row.name, String(t.name));
    setText(row.caller, who ?? "free");
    row.li.dataset.free = String(!t.caller);
    row.li.dataset.caller = t.caller ?? "";
    row.badge.hidden = !(t.caller && t.muted);
    row.mute.disabled = row.kick.disabled = !t.caller;
    setText(row.mute, t.muted ? "Unmute" : "Mute");
    if (!isHeld(row.mute)) setAttr(row.mute, "aria-pressed", String(Boolean(t.muted)));
    setAttr(row.mute, "aria-label", `${t.muted ? "Unmute" : "Mute"} the ${t.name}${who ? ` (${who})` : ""}`);
    const kick = `Kick the ${t.name}${who ? ` (${who})` : ""}`;
    const armedNow = isArmed(row.kick, t.caller);
    setText(row.kick, armedNow ? "Confirm kick" : "Kick");
    row.kick.dataset.armed = String(armedNow);
    setAttr(row.kick, "aria-label", armedNow ? `Confirm: k${kick.slice(1)}` : kick);
    if (list.children[i] !== row.li) list.insertBefore(row.li, list.children[i] ?? null);
  });
  while (list.children.length > tracks.length) list.lastElementChild.remove();
  renderActivity();
}

// -- what each caller is doing: whom to kick ---------------------------------------------

const ago = (s) => (s < 60 ? `${Math.floor(s)} s ago` : `${Math.floor(s / 60)} min ago`);
function duration(s) {
  const whole = Math.ceil(s);
  return whole < 90 ? `${whole} s` : `${Math.floor(whole / 60)} min ${whole % 60} s`;
}
const figure = (v) => (typeof v === "number" && Number.isFinite(v) && v >= 0 ? v : null);

/** Presses a minute, the last press and the turn's end, counted on from the state's
 * figures while the billboard is live (they come at least once a second). */
function renderActivity() {
  const live = heardState() === "ok";
  const elapsed = live ? (performance.now() - lastHeard) / 1000 : 0;
  for (const row of rows.values()) {
    const t = row.data;
    if (!t?.caller) {
      setText(row.activity, "");
      row.li.dataset.quiet = "false";
      continue;
    }
    const presses = figure(t.presses_min);
    const last = figure(t.last_press_s);
    const left = figure(t.turn_left_s);
    const parts = [presses === null ? "– presses/min" : `${presses} presses/min`];
    parts.push(last === null ? "no press yet" : `last press ${ago(last + elapsed)}`);
    if (left !== null) parts.push(`${duration(Math.max(0, left - elapsed))} left in turn`);
    setText(row.activity, parts.join(" · "));
    row.li.dataset.quiet = String(last !== null && last + elapsed >= QUIET_AFTER_S);
  }
}

// -- Kick asks first: the first press arms it, a second within ARM_MS kicks ------------------

const armed = new Map(); // button → {caller, timer}
const isArmed = (button, caller) => armed.get(button)?.caller === caller;

function disarm(button) {
  clearTimeout(armed.get(button)?.timer);
  armed.delete(button);
}

function kickPressed(button, caller, label) {
  if (isArmed(button, caller)) {
    disarm(button);
    command(COMMAND.kick, { caller }, label);
  } else {
    disarm(button);
    const timer = setTimeout(() => {
      armed.delete(button);
      if (state) render();
    }, ARM_MS);
    armed.set(button, { caller, timer });
    tell(`Press “Confirm kick” within ${ARM_MS / 1000} s to ${label}.`);
  }
  if (state) render();
}

function renderLine(line, total) {
  const list = $("line");
  const items = [...list.children];
  line.forEach((caller, i) => {
    let li = items.find((el) => el.dataset.caller === caller);
    if (!li) {
      li = document.createElement("li");
      li.dataset.caller = caller;
      li.innerHTML = '<span class="who"></span><button type="button" class="kick">Kick</button>';
      const button = li.querySelector("button");
      button.addEventListener("click", () => {
        kickPressed(button, caller, `kick the ${ordinal(Number(li.dataset.place))} in line`);
      });
    }
    li.dataset.place = String(i + 1);
    // Only what the facade would show; a caller never seen on a track has no name here.
    const who = displays.get(caller);
    setText(li.querySelector(".who"), `${ordinal(i + 1)}${who ? ` — ${who}` : ""}`);
    const button = li.querySelector("button");
    const kick = `Kick the ${ordinal(i + 1)} in line${who ? ` (${who})` : ""}`;
    const armedNow = isArmed(button, caller);
    setText(button, armedNow ? "Confirm kick" : "Kick");
    button.dataset.armed = String(armedNow);
    setAttr(button, "aria-label", armedNow ? `Confirm: k${kick.slice(1)}` : kick);
    if (list.children[i] !== li) list.insertBefore(li, list.children[i] ?? null);
  });
  for (const li of [...list.children].slice(line.length)) {
    disarm(li.querySelector("button"));
    li.remove();
  }
  const more = total - line.length;
  setText($("line-count"), total ? `(${total})` : "");
  setText($("line-more"), more > 0 ? `and ${more} more` : "");
  $("line-more").hidden = more <= 0;
  $("line-empty").hidden = total > 0;
}

// -- is the billboard there? ------------------------------------------------------------

/** "ok" (a state within SILENT_AFTER_S), "stale", "waiting" (none yet on this link) or
 * "unknown" (the relay is offline: nothing can be known of the billboard). */
function heardState() {
  if (!relayOnline) return "unknown";
  if (!lastHeard) return "waiting";
  return (performance.now() - lastHeard) / 1000 > SILENT_AFTER_S ? "stale" : "ok";
}

let wasLive = false;
let probed = 0;
function tickHeard() {
  const el = $("heard");
  const mode = heardState();
  const age = lastHeard ? Math.floor((performance.now() - lastHeard) / 1000) : 0;
  const text = {
    ok: "Billboard: live",
    stale: `Billboard: silent for ${age} s`,
    waiting: "Waiting for the billboard…",
    unknown: "Billboard: unknown — the relay is offline",
  }[mode];
  el.dataset.state = mode;
  setText(el, text);
  if ((mode === "ok") !== wasLive) {
    // Said once to a screen reader, not every second.
    $("announce").textContent = mode === "ok" ? "Billboard is live" : text.replace(/ for \d+ s$/, "");
  }
  wasLive = mode === "ok";
  // A silent billboard may be a relay gone quiet: ask it (at most every few seconds).
  if (mode === "stale" && performance.now() - probed > PROBE_DEAD_MS) {
    probed = performance.now();
    link.ping();
  }
  if ($("facade-box").dataset.stale !== String(mode !== "ok")) drawFacade();
  renderActivity();
}

// -- the facade, small (facade_view.js) ---------------------------------------------------

let litShown = null;
function drawFacade() {
  const live = heardState() === "ok";
  $("facade-box").dataset.stale = String(!live);
  const canvas = $("facade");
  const { lit, windows } = drawWindows(canvas, state, live);
  const what = live ? `${lit} of ${windows} windows lit` : "not live";
  if (what !== litShown) {
    litShown = what;
    setAttr(canvas, "aria-label", `The facade: ${what}`);
  }
}

// -- the relay's figures ---------------------------------------------------------------

function uptime(s) {
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

async function pollHealth() {
  try {
    const resp = await fetch("/healthz", { cache: "no-store", signal: AbortSignal.timeout(1800) });
    if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
    const h = await resp.json();
    setText($("f-connections"), String(h.connections ?? "–"));
    setText($("f-events"), typeof h.events_per_s === "number" ? h.events_per_s.toFixed(1) : "–");
    setText($("f-drops"), String(h.drops ?? "–"));
    setText($("f-subscribers"), String(h.subscribers ?? "–"));
    setText($("f-uptime"), typeof h.uptime_s === "number" ? uptime(h.uptime_s) : "–");
    const errors = Object.entries(h.errors ?? {}).map(([k, v]) => `${k} ${v}`).join(", ");
    const status =
      h.status === "degraded" ? "degraded: no billboard is listening (callers reach nobody)" : h.status;
    setText($("relay-health"), `Status ${status ?? "?"}${errors ? ` · refused: ${errors}` : ""}`);
    $("figures").dataset.health = h.status === "degraded" ? "degraded" : "ok";
  } catch {
    setText($("relay-health"), "The relay's health figures are unreachable.");
    $("figures").dataset.health = "unreachable";
  }
}

// -- controls --------------------------------------------------------------------------

function fillSelect(select, options) {
  for (const [value, label] of options) select.add(new Option(label, value));
}

function sendTempo(bpm) {
  const value = Math.round(Math.min(MAX_BPM, Math.max(MIN_BPM, Number(bpm))));
  if (!Number.isFinite(value)) return;
  for (const el of [$("tempo"), $("tempo-range")]) {
    el.value = String(value);
    hold(el);
  }
  command(COMMAND.tempo, { bpm: value }, `tempo ${value} BPM`);
}

function start() {
  setText($("channel"), `Channel “${channel}”`);
  if (!CHANNEL_ID.test(channel) || !CHANNEL_ID.test(control)) {
    $("link").dataset.state = "offline";
    setText($("link"), "This link's channel name is not valid.");
    for (const el of document.querySelectorAll("main button, main input, main select")) el.disabled = true;
    return;
  }
  fillSelect($("key"), KEYS);
  fillSelect($("scale"), SCALES);
  fillSelect($("style"), STYLES);

  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const value = $("token").value.trim();
    if (!value) return;
    token = value;
    store(value);
    $("token").value = "";
    $("token-form").hidden = true;
    delete $("token-form").dataset.refused;
    tell("Checking the token…");
    checkToken();
  });

  const range = $("tempo-range");
  range.addEventListener("input", () => {
    hold(range);
    $("tempo").value = range.value;
  });
  range.addEventListener("change", () => sendTempo(range.value));
  $("tempo").addEventListener("change", (e) => sendTempo(e.target.value));
  $("tempo").addEventListener("keydown", (e) => {
    if (e.key === "Enter") sendTempo(e.target.value);
  });
  const current = () => Number($("tempo").value) || 112;
  $("tempo-down").addEventListener("click", () => sendTempo(current() - TEMPO_STEP));
  $("tempo-up").addEventListener("click", () => sendTempo(current() + TEMPO_STEP));
  $("key").addEventListener("change", (e) => {
    hold(e.target);
    command(COMMAND.key, { key: e.target.value }, `key ${e.target.value}`);
  });
  $("scale").addEventListener("change", (e) => {
    hold(e.target);
    command(COMMAND.scale, { name: e.target.value }, `scale ${e.target.selectedOptions[0].text}`);
  });
  $("style").addEventListener("change", (e) => {
    hold(e.target);
    command(COMMAND.style, { name: e.target.value }, `groove ${e.target.selectedOptions[0].text}`);
  });
  $("panic").addEventListener("click", () => command(COMMAND.panic, {}, "panic"));
  $("midi-sync").addEventListener("click", () => command(COMMAND.midi_sync, {}, "MIDI sync"));
  $("pause").addEventListener("click", () => {
    const on = $("pause").getAttribute("aria-pressed") !== "true";
    if (command(COMMAND.pause, { on }, on ? "pause new callers" : "resume new callers")) {
      hold($("pause"));
      $("pause").setAttribute("aria-pressed", String(on));
    }
  });

  addEventListener("online", () => link.wake());
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") link.wake();
  });
  addEventListener("resize", drawFacade);
  setInterval(tickHeard, 500);
  setInterval(pollHealth, HEALTH_EVERY_MS);
  pollHealth();
  link.connect();
  if (!token) askToken();
}

start();
