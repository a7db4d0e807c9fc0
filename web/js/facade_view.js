// The facade, small: the building's windows as a billboard's `state` lights them, drawn
// on a canvas once per state (the console's live view; not animated, unlike the wall).

import { FACADE_MAX } from "./contract.js";

const UNLIT = "#191a22";
const COLOR = /^#[0-9a-fA-F]{6}$/;

/**
 * Draw `state.lit` on the floors × bays grid of `canvas` (sized to its CSS width, the
 * building's proportions); with `live` false every window is drawn unlit, since old
 * news of the lights is no news. Returns how many windows it lit, of how many.
 */
export function drawWindows(canvas, state, live) {
  const clamp = (v, d) => Math.max(1, Math.min(FACADE_MAX, Math.floor(Number(v)) || d));
  const floors = clamp(state?.facade?.floors, 7);
  const bays = clamp(state?.facade?.bays, 8);
  const ratio = `${bays} / ${floors}`;
  if (canvas.style.aspectRatio !== ratio) canvas.style.aspectRatio = ratio;
  const dpr = window.devicePixelRatio || 1;
  const w = Math.max(1, Math.round(canvas.clientWidth * dpr));
  const h = Math.max(1, Math.round((w * floors) / bays));
  if (canvas.width !== w || canvas.height !== h) [canvas.width, canvas.height] = [w, h];
  const ctx = canvas.getContext("2d");
  ctx.globalAlpha = 1;
  ctx.fillStyle = "#050507";
  ctx.fillRect(0, 0, w, h);
  const cw = w / bays;
  const ch = h / floors;
  const cell = (floor, bay, color, alpha) => {
    ctx.globalAlpha = alpha;
    ctx.fillStyle = color;
    ctx.fillRect(bay * cw + cw * 0.12, floor * ch + ch * 0.12, cw * 0.76, ch * 0.76);
  };
  for (let f = 0; f < floors; f++) for (let b = 0; b < bays; b++) cell(f, b, UNLIT, 1);
  let lit = 0;
  for (const item of live && Array.isArray(state?.lit) ? state.lit : []) {
    if (!Array.isArray(item)) continue;
    const [floor, bay, color, intensity] = item;
    if (!(floor >= 0 && floor < floors && bay >= 0 && bay < bays) || !COLOR.test(color ?? "")) continue;
    cell(floor, bay, color, Math.min(1, 0.2 + Math.max(0, Number(intensity) || 0)));
    lit += 1;
  }
  ctx.globalAlpha = 1;
  return { lit, windows: floors * bays };
}
