// The operator's console: what the billboard says on CHANNEL:state (who plays, who
// waits, who was kicked, the music, its HUD), the relay's /healthz figures, and the
// operator's commands, published on CHANNEL:control with the operator token. Its parts:
// console_link.js (the relay, the token, commands), console_callers.js (the tracks,
// the line, kicks and their undo), facade_view.js (the small facade), console_dom.js.

import { drawWindows } from "./facade_view.js";
import {
  CHANNEL_ID,
  COMMAND,
  EVENT,
  KEY_NAMES,
  MAX_BPM,
  MIN_BPM,
  SCALE_NAMES,
  STYLE_NAMES,
} from "./contract.js";
import { $, hold, isHeld, setAttr, setText, tell } from "./console_dom.js";
import {
  PROBE_DEAD_MS,
  channel,
  command,
  connect,
  control,
  heardState,
  live,
  ping,
  useToken,
} from "./console_link.js";
import { onLeave, renderActivity, renderCallers } from "./console_callers.js";

// "End all calls" asks first, as a Kick does: a second press this soon ends them.
const END_CALLS_ARM_MS = 3000;
let endCallsTimer = null;

function endCallsArmed(on) {
  clearTimeout(endCallsTimer);
  endCallsTimer = on ? setTimeout(() => endCallsArmed(false), END_CALLS_ARM_MS) : null;
  const button = $("end-calls");
  button.dataset.armed = String(on);
  setText(button, on ? "Confirm: end all calls" : "End all calls");
}

function endCallsPressed() {
  if (endCallsTimer === null) {
    endCallsArmed(true);
    tell(`Press “Confirm: end all calls” within ${END_CALLS_ARM_MS / 1000} s to hang up every phone call.`);
    return;
  }
  endCallsArmed(false);
  command(COMMAND.end_calls, {}, "end all calls", "All phone calls ended: their tracks are free. Keypads play on.");
}

const TEMPO_STEP = 4; // the billboard's + / − keys move this much too
const HEALTH_EVERY_MS = 2000;
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

// -- what the billboard says -----------------------------------------------------------

function onBillboard(data) {
  if (data.event === EVENT.state) {
    render();
    tickHeard();
    drawFacade();
  } else onLeave(data);
}

function render() {
  const s = live.state;
  renderCallers();
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

// -- is the billboard there? ------------------------------------------------------------

let wasLive = false;
let probed = 0;
function tickHeard() {
  const el = $("heard");
  const mode = heardState();
  const age = live.lastHeard ? Math.floor((performance.now() - live.lastHeard) / 1000) : 0;
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
    ping();
  }
  if ($("facade-box").dataset.stale !== String(mode !== "ok")) drawFacade();
  renderActivity();
}

// -- the facade, small (facade_view.js) ---------------------------------------------------

let litShown = null;
function drawFacade() {
  const isLive = heardState() === "ok";
  $("facade-box").dataset.stale = String(!isLive);
  const canvas = $("facade");
  const { lit, windows } = drawWindows(canvas, live.state, isLive);
  const what = isLive ? `${lit} of ${windows} windows lit` : "not live";
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
    $("token").value = "";
    $("token-form").hidden = true;
    delete $("token-form").dataset.refused;
    tell("Checking the token…");
    useToken(value);
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
  $("end-calls").addEventListener("click", endCallsPressed);
  $("pause").addEventListener("click", () => {
    const on = $("pause").getAttribute("aria-pressed") !== "true";
    if (command(COMMAND.pause, { on }, on ? "pause new callers" : "resume new callers")) {
      hold($("pause"));
      $("pause").setAttribute("aria-pressed", String(on));
    }
  });

  addEventListener("resize", drawFacade);
  setInterval(tickHeard, 500);
  setInterval(pollHealth, HEALTH_EVERY_MS);
  pollHealth();
  connect({ onBillboard, onLiveness: tickHeard });
}

start();
