// The wall mirror: the facade as the billboard lights it, drawn on a full-window canvas
// from its `state` events (≤ 10 a second), smoothed between them at the screen's rate.

import { RelayLink, relayUrl } from "./relay.js";
import {
  CHANNEL_ID,
  DEFAULT_CHANNEL,
  EVENT,
  FACADE_MAX,
  stateChannel as stateChannelOf,
} from "./contract.js";

const $ = (id) => document.getElementById(id);
const HALF_LIFE_MS = 350; // the billboard's lights halve this fast (engine LIGHT_HALF_LIFE_S)
const ATTACK_MS = 45; // a window lights up this fast, so a 10 Hz state looks continuous
// The billboard sends a state at least every second: two seconds without one and the
// wall says at once, over the whole building, that it is not playing.
const GONE_AFTER_S = 2;
const LOOP_STEPS = 16;
const UNLIT = "#191a22";

const channel = new URLSearchParams(location.search).get("channel") ?? DEFAULT_CHANNEL;
const stateChannel = stateChannelOf(channel);
const canvas = $("facade");
const ctx = canvas.getContext("2d", { alpha: false });

let floors = 7;
let bays = 8;
let lights = []; // per window: {color, level, at, shown}
let state = null;
let lastHeard = 0;
let linkStatus = "connecting";
// The beat, extrapolated between states: step = base + elapsed × tempo / 15 (16ths).
let beat = { step: 0, at: 0, tempo: 112, correction: 0 };
let layout = null;
let frames = 0;
let states = 0;
const sprites = new Map(); // colour → a soft glow, drawn once

const safeColor = (c) => (/^#[0-9a-fA-F]{6}$/.test(c ?? "") ? c : null);

function resetLights() {
  lights = Array.from({ length: floors * bays }, () => ({ color: null, level: 0, at: 0, shown: 0 }));
}
resetLights();

// -- what the billboard says -----------------------------------------------------------

function onState(data, now) {
  const f = Math.max(1, Math.min(FACADE_MAX, Number(data.facade?.floors) || floors));
  const b = Math.max(1, Math.min(FACADE_MAX, Number(data.facade?.bays) || bays));
  if (f !== floors || b !== bays) {
    floors = f;
    bays = b;
    resetLights();
    layout = null;
  }
  for (const item of Array.isArray(data.lit) ? data.lit : []) {
    const [floor, bay, color, intensity] = item;
    if (!(floor >= 0 && floor < floors && bay >= 0 && bay < bays)) continue;
    const light = lights[floor * bays + bay];
    const level = Math.max(0, Math.min(1, Number(intensity) || 0));
    // The newest figure wins: its decay from here is what the billboard shows.
    light.level = level;
    light.at = now;
    light.color = safeColor(color) ?? light.color ?? "#ffffff";
  }
  const tempo = Number(data.tempo) || beat.tempo;
  const step = Number(data.step);
  if (Number.isFinite(step)) {
    const shown = stepAt(now);
    beat = { step, at: now, tempo, correction: 0 };
    const jump = shown - step;
    if (states > 0 && Math.abs(jump) < 2) beat.correction = jump; // glide, no jerk
  }
  state = data;
  states += 1;
  lastHeard = now;
  renderLegend(data);
  renderInvite(data.banner);
  renderStatus(now);
}

function stepAt(now) {
  const elapsed = Math.max(0, now - beat.at) / 1000;
  return beat.step + (elapsed * beat.tempo) / 15 + beat.correction;
}

function renderLegend(data) {
  const list = $("legend");
  const tracks = Array.isArray(data.tracks) ? data.tracks : [];
  tracks.forEach((t, i) => {
    let li = list.children[i];
    if (!li) {
      li = document.createElement("li");
      li.innerHTML = '<i aria-hidden="true"></i><b></b><span></span>';
      list.append(li);
    }
    li.querySelector("i").style.background = safeColor(t.color) ?? "#777";
    const name = String(t.name ?? "");
    if (li.querySelector("b").textContent !== name) li.querySelector("b").textContent = name;
    const who = t.caller ? String(t.display ?? "playing") : "free"; // masked by the billboard
    if (li.querySelector("span").textContent !== who) li.querySelector("span").textContent = who;
    li.dataset.free = String(!t.caller);
    li.dataset.muted = String(Boolean(t.caller && t.muted));
  });
  while (list.children.length > tracks.length) list.lastElementChild.remove();
  const scale = String(data.scale ?? "").replace("_", " ");
  let text = `${Math.round(Number(data.tempo) || 0)} BPM · ${data.key ?? ""} ${scale}`;
  if (data.attract) text += " · call or scan the code to play";
  if (data.paused) text += " · new callers paused";
  if ($("music").textContent !== text) $("music").textContent = text;
}

/** "waiting" (no state yet), "live", or "gone": the relay link is down, or no state
 * came for GONE_AFTER_S — the lights then go dark, whatever the last state said. */
function mode(now) {
  if (linkStatus === "offline" || (lastHeard && (now - lastHeard) / 1000 >= GONE_AFTER_S)) {
    return "gone";
  }
  return lastHeard ? "live" : "waiting";
}

function renderStatus(now) {
  const el = $("status");
  const m = mode(now);
  let text = "Waiting for the billboard…";
  let why = "";
  if (m === "live") text = "Live";
  else if (m === "gone") {
    why =
      linkStatus === "offline"
        ? "The wall lost its link to the relay — trying again…"
        : `No news from it for ${Math.floor((now - lastHeard) / 1000)} s`;
    text = `The billboard is not playing. ${why}`;
  }
  if (el.dataset.state !== m) el.dataset.state = m;
  if (el.textContent !== text) el.textContent = text;
  if ($("gone").hidden !== (m !== "gone")) $("gone").hidden = m !== "gone";
  if ($("gone-why").textContent !== why) $("gone-why").textContent = why;
}

// -- how to play: the number and the keypad's QR code (relay/qr.py draws it) ----------------

let keypadShown = null;
// The relay draws a few new codes a second at most (a 503 then): a code that failed to
// load is asked for again with the next state, a few seconds on.
let qrRetryAt = 0;
$("qr").addEventListener("error", () => {
  qrRetryAt = performance.now() + 3000;
});
function renderInvite(banner) {
  if (qrRetryAt && performance.now() >= qrRetryAt) {
    qrRetryAt = 0;
    keypadShown = null;
  }
  const phone = typeof banner?.phone === "string" ? banner.phone.slice(0, 32) : "";
  const keypad =
    typeof banner?.keypad === "string" && /^https?:\/\/[^\s]{1,500}$/.test(banner.keypad)
      ? banner.keypad
      : null;
  const call = $("call");
  if (phone) {
    if (call.querySelector("b")?.textContent !== phone) {
      call.replaceChildren("Call ", Object.assign(document.createElement("b"), { textContent: phone }));
    }
  } else if (call.textContent) call.replaceChildren();
  call.hidden = !phone;
  if (keypad !== keypadShown) {
    keypadShown = keypad;
    if (keypad) $("qr").src = `/qr.svg?url=${encodeURIComponent(keypad)}`;
    $("qr").hidden = $("scan").hidden = !keypad;
    $("scan").textContent = phone ? "… or scan to play" : "Scan to play";
  }
  const hidden = !phone && !keypad;
  if ($("invite").hidden !== hidden) {
    $("invite").hidden = hidden;
    layout = null;
  }
}

const link = new RelayLink(relayUrl(), {
  onOpen() {
    link.send({ type: "subscriber", id: stateChannel, v: 2 });
  },
  onMessage(msg) {
    if (msg.type === "event" && msg.id === stateChannel && msg.data?.event === EVENT.state) {
      onState(msg.data, performance.now());
    }
  },
  onStatus(status) {
    linkStatus = status;
    renderStatus(performance.now());
  },
});

// -- drawing ---------------------------------------------------------------------------

function resize() {
  const dpr = window.devicePixelRatio || 1;
  const w = Math.max(1, Math.round(canvas.clientWidth * dpr));
  const h = Math.max(1, Math.round(canvas.clientHeight * dpr));
  if (canvas.width !== w || canvas.height !== h) {
    canvas.width = w;
    canvas.height = h;
  }
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  layout = null;
}

/** Where the building, its windows and the beat strip go, in CSS pixels: clear of the
 * invitation (beside it on a wide screen, under it on a tall one). */
function computeLayout() {
  const W = canvas.clientWidth;
  const H = canvas.clientHeight;
  const invite = $("invite");
  const aside = invite.hidden ? 0 : W > H ? invite.offsetWidth + 24 : 0;
  const top = 32 + (invite.hidden || W > H ? 0 : invite.offsetHeight + 8);
  const availW = (W - aside) * 0.94;
  const legend = $("legend").offsetHeight || 40;
  const bottom = legend + 30; // the beat strip and the legend
  // The building's frame reaches a wall's width beyond the windows: keep it clear.
  const availH = Math.max(40, (H - top - bottom) * 0.92);
  // Windows a little taller than wide, with walls between them.
  const cellRatio = 1.25;
  let cellW = availW / bays;
  let cellH = cellW * cellRatio;
  if (cellH * floors > availH) {
    cellH = availH / floors;
    cellW = cellH / cellRatio;
  }
  const bw = cellW * bays;
  const bh = cellH * floors;
  const x = (W - aside - bw) / 2;
  const y = top + (availH - bh) / 2;
  const gapX = cellW * 0.22;
  const gapY = cellH * 0.2;
  return { W, H, x, y, bw, bh, cellW, cellH, winW: cellW - gapX, winH: cellH - gapY, gapX, gapY, beatY: Math.min(H - legend - 12, y + bh + gapY + 16) };
}

function windowRect(floor, bay) {
  const L = layout ?? (layout = computeLayout());
  return {
    x: L.x + bay * L.cellW + L.gapX / 2,
    y: L.y + floor * L.cellH + L.gapY / 2,
    w: L.winW,
    h: L.winH,
  };
}

function glow(color) {
  let sprite = sprites.get(color);
  if (!sprite) {
    sprite = document.createElement("canvas");
    sprite.width = sprite.height = 64;
    const g = sprite.getContext("2d");
    const gradient = g.createRadialGradient(32, 32, 4, 32, 32, 32);
    gradient.addColorStop(0, color);
    gradient.addColorStop(1, "rgba(0,0,0,0)");
    g.fillStyle = gradient;
    g.fillRect(0, 0, 64, 64);
    sprites.set(color, sprite);
  }
  return sprite;
}

let lastFrame = 0;
function draw(now) {
  frames += 1;
  const dt = lastFrame ? Math.min(100, now - lastFrame) : 16;
  lastFrame = now;
  const L = layout ?? (layout = computeLayout());
  const live = mode(now) !== "gone";
  ctx.globalCompositeOperation = "source-over";
  ctx.globalAlpha = 1;
  ctx.fillStyle = "#050507";
  ctx.fillRect(0, 0, L.W, L.H);
  // The building.
  ctx.fillStyle = "#0e0f14";
  ctx.fillRect(L.x - L.gapX, L.y - L.gapY, L.bw + 2 * L.gapX, L.bh + 2 * L.gapY);
  const attack = 1 - Math.exp(-dt / ATTACK_MS);
  const glows = [];
  for (let floor = 0; floor < floors; floor++) {
    for (let bay = 0; bay < bays; bay++) {
      const light = lights[floor * bays + bay];
      if (!live) light.level = 0; // a gone billboard lights nothing
      const target = light.level * Math.pow(0.5, Math.max(0, now - light.at) / HALF_LIFE_MS);
      light.shown += (target - light.shown) * (target > light.shown ? attack : 1);
      if (light.shown < 0.01) light.shown = 0;
      const r = windowRect(floor, bay);
      ctx.globalAlpha = 1;
      ctx.fillStyle = UNLIT;
      ctx.fillRect(r.x, r.y, r.w, r.h);
      if (light.shown > 0 && light.color) {
        ctx.globalAlpha = Math.min(1, 0.15 + light.shown);
        ctx.fillStyle = light.color;
        ctx.fillRect(r.x, r.y, r.w, r.h);
        glows.push([r, light]);
      }
    }
  }
  // Light spills out of the windows onto the walls.
  ctx.globalCompositeOperation = "lighter";
  for (const [r, light] of glows) {
    ctx.globalAlpha = light.shown * 0.55;
    const s = Math.max(r.w, r.h) * 2.2;
    ctx.drawImage(glow(light.color), r.x + r.w / 2 - s / 2, r.y + r.h / 2 - s / 2, s, s);
  }
  ctx.globalCompositeOperation = "source-over";
  drawBeat(L, now);
  if (lastHeard) renderStatus(now);
  requestAnimationFrame(draw);
}

/** Sixteen dots, one a 16th: the loop's position, with a pulse on every beat. */
function drawBeat(L, now) {
  if (!state) return;
  beat.correction *= Math.exp(-1 / 8); // glide any correction away over a few frames
  const step = stepAt(now);
  const pos = ((Math.floor(step) % LOOP_STEPS) + LOOP_STEPS) % LOOP_STEPS;
  const phase = step - Math.floor(step);
  const width = Math.min(L.W * 0.8, 480);
  const gap = width / LOOP_STEPS;
  const x0 = (L.W - width) / 2 + gap / 2;
  for (let i = 0; i < LOOP_STEPS; i++) {
    const onBeat = i % 4 === 0;
    const current = i === pos;
    const radius = (onBeat ? 5 : 3) + (current ? 3 * (1 - phase) : 0);
    ctx.globalAlpha = current ? 1 : onBeat ? 0.55 : 0.3;
    ctx.fillStyle = current ? "#ffd54a" : "#c8c8d0";
    ctx.beginPath();
    ctx.arc(x0 + i * gap, L.beatY, radius, 0, Math.PI * 2);
    ctx.fill();
  }
  ctx.globalAlpha = 1;
}

function start() {
  if (!CHANNEL_ID.test(channel) || !CHANNEL_ID.test(stateChannel)) {
    $("status").textContent = "This link's channel name is not valid.";
    return;
  }
  resize();
  addEventListener("resize", resize);
  // A change of zoom or of screen changes devicePixelRatio without a resize.
  const watchDpr = () => {
    matchMedia(`(resolution: ${window.devicePixelRatio}dppx)`).addEventListener(
      "change",
      () => {
        resize();
        watchDpr();
      },
      { once: true },
    );
  };
  watchDpr();
  const relayout = new ResizeObserver(() => (layout = null));
  relayout.observe($("legend"));
  relayout.observe($("invite"));
  addEventListener("online", () => link.wake());
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") link.wake();
  });
  link.connect();
  requestAnimationFrame(draw);
}

// For tests and curious operators: frames drawn, states received, where a window is.
window.dialjamWall = {
  get frames() {
    return frames;
  },
  get states() {
    return states;
  },
  get facade() {
    return { floors, bays };
  },
  windowRect,
};

start();
