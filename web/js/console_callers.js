// Who plays, who waits and who was kicked, on the operator's console: one row per track
// with what its caller is doing (whom to kick, in figures), Mute, and a Kick that asks
// first; the waiting line with its own Kick; and the running bans, each with an Undo
// that lifts it at once (the `unban` command, through the same path a kick takes).

import { COMMAND, EVENT, LEAVE_REASON } from "./contract.js";
import { $, duration, hold, isHeld, ordinal, safeColor, setAttr, setText, tell } from "./console_dom.js";
import { command, live, sinceHeard } from "./console_link.js";

const ARM_MS = 3000; // a Kick arms; a second press this soon kicks
const QUIET_AFTER_S = 15; // a caller this long without a press is shown as quiet

const displays = new Map(); // caller → what the facade shows for them ("…12", a nickname)

/** Draw the callers of the latest state. */
export function renderCallers() {
  const s = live.state;
  if (!s) return;
  renderTracks(Array.isArray(s.tracks) ? s.tracks : []);
  // The billboard names waiting callers as the facade would ("…12" or a nickname).
  for (const w of Array.isArray(s.waiting) ? s.waiting : []) {
    if (w && typeof w.caller === "string" && typeof w.display === "string") {
      displays.set(w.caller, w.display);
    }
  }
  const line = Array.isArray(s.line) ? s.line : [];
  // `line` holds only the front of the line; `line_length` counts everyone waiting.
  renderLine(line, Math.max(line.length, Number(s.line_length) || 0));
  renderKicked(Array.isArray(s.banned) ? s.banned : []);
}

/** A caller the billboard freed: said when it was a kick. */
export function onLeave(data) {
  if (data.event === EVENT.leave && data.reason === LEAVE_REASON.kicked) {
    const who = displays.get(data.caller);
    tell(`${who ?? "A caller"} was removed. Undo it under “Kicked”.`);
  }
}

// -- the tracks: one row each, kept across states (a focused Kick button stays focused) ------

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
  tracks.forEach((t, i) => {
    const row = trackRow(String(t.name));
    row.data = t;
    const who = t.caller ? String(t.display ?? "a caller") : null; // masked by the billboard
    if (t.caller) displays.set(t.caller, who);
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
const figure = (v) => (typeof v === "number" && Number.isFinite(v) && v >= 0 ? v : null);

/** Presses a minute, the last press and the turn's end, and the bans' time left, counted
 * on from the state's figures while the billboard is live (they come at least once a
 * second). */
export function renderActivity() {
  const elapsed = sinceHeard();
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
  for (const li of $("kicked").children) {
    const left = Math.max(1, Number(li.dataset.banS) - elapsed);
    setText(li.querySelector(".left"), `may play again in ${duration(left)}`);
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
      renderCallers();
    }, ARM_MS);
    armed.set(button, { caller, timer });
    tell(`Press “Confirm kick” within ${ARM_MS / 1000} s to ${label}.`);
  }
  renderCallers();
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

// -- Kicked: each running ban with its Undo, for as long as it runs ---------------------------

function renderKicked(banned) {
  const list = $("kicked");
  const shown = banned.filter((b) => b && typeof b.caller === "string" && figure(b.ban_s) !== null);
  const items = [...list.children];
  shown.forEach((b, i) => {
    let li = items.find((el) => el.dataset.caller === b.caller);
    const who = typeof b.display === "string" ? b.display : displays.get(b.caller) ?? "a caller";
    if (!li) {
      li = document.createElement("li");
      li.dataset.caller = b.caller;
      li.innerHTML =
        '<span class="who"><b></b><span class="left"></span></span>' +
        '<button type="button" class="undo">Undo kick</button>';
      const button = li.querySelector("button");
      button.addEventListener("click", () => {
        const name = li.dataset.who;
        if (command(COMMAND.unban, { caller: b.caller }, `undo the kick of ${name}: they may play again`)) {
          button.disabled = true; // until the billboard lists them no more (or a while)
          setTimeout(() => (button.disabled = false), ARM_MS);
        }
      });
    }
    li.dataset.who = who;
    li.dataset.banS = String(b.ban_s);
    setText(li.querySelector("b"), who);
    setAttr(li.querySelector("button"), "aria-label", `Undo the kick of ${who}: let them play again now`);
    if (list.children[i] !== li) list.insertBefore(li, list.children[i] ?? null);
  });
  for (const li of [...list.children].slice(shown.length)) li.remove();
  $("kicked-empty").hidden = shown.length > 0;
  renderActivity();
}
