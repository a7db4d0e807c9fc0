// The console's small page helpers: elements by id, writes that touch the page only on
// change, the message line, and a control held at the value just chosen here.

export const $ = (id) => document.getElementById(id);
const HOLD_MS = 2000; // a control just changed here is not overwritten by older states

export const safeColor = (c) => (/^#[0-9a-fA-F]{6}$/.test(c ?? "") ? c : "#555555");

export function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

export function setAttr(el, name, value) {
  if (el.getAttribute(name) !== value) el.setAttribute(name, value);
}

export function ordinal(n) {
  const tens = n % 100;
  const suffix = tens >= 11 && tens <= 13 ? "th" : ["th", "st", "nd", "rd"][n % 10] ?? "th";
  return `${n}${suffix}`;
}

/** "42 s", "1 min 40 s": how long, for a person. */
export function duration(s) {
  const whole = Math.ceil(s);
  return whole < 90 ? `${whole} s` : `${Math.floor(whole / 60)} min ${whole % 60} s`;
}

let messageTimer = 0;
export function tell(text, kind = "info") {
  const el = $("message");
  clearTimeout(messageTimer);
  el.hidden = false;
  el.dataset.kind = kind;
  el.textContent = text;
  if (kind !== "error") messageTimer = setTimeout(() => (el.hidden = true), 4000);
}

// A control changed here keeps its value until the billboard has caught up.
const held = new Map();
export const hold = (el) => held.set(el, performance.now() + HOLD_MS);
export const isHeld = (el) => document.activeElement === el && el.tagName === "INPUT" && el.type === "number"
  ? true
  : (held.get(el) ?? 0) > performance.now();
