// A short, quiet preview of the caller's instrument through WebAudio: not the
// building's sound (that comes from the speakers, on the beat), only a hint in the hand
// of what the key does. Each track's sound is approximated by its mode and name.

import { KEYS } from "./contract.js";

const LEVEL = 0.08; // quiet: the building is the loud one
const MAJOR = [0, 2, 4, 5, 7, 9, 11, 12, 14, 16]; // keys 1–9 and 0: degrees of a scale
const CHORD = [0, 4, 7, 12, 16, 19, 24, 28, 31, 36]; // a chord's tones across octaves

let audio = null;

function context() {
  const Ctx = window.AudioContext || window.webkitAudioContext;
  if (!Ctx) return null;
  audio ??= new Ctx();
  if (audio.state === "suspended") audio.resume();
  return audio;
}

function envelope(ctx, t, attack, length, level = LEVEL) {
  const gain = ctx.createGain();
  gain.gain.setValueAtTime(0, t);
  gain.gain.linearRampToValueAtTime(level, t + attack);
  gain.gain.exponentialRampToValueAtTime(0.0001, t + length);
  gain.connect(ctx.destination);
  return gain;
}

function tone(ctx, t, hz, type, attack, length, level) {
  const osc = ctx.createOscillator();
  osc.type = type;
  osc.frequency.setValueAtTime(hz, t);
  osc.connect(envelope(ctx, t, attack, length, level));
  osc.start(t);
  osc.stop(t + length + 0.02);
  return osc;
}

function drum(ctx, t, key) {
  const n = KEYS.indexOf(key);
  if (n % 3 === 1 || key === "*") {
    // a kick: a sine falling fast
    const osc = tone(ctx, t, 150, "sine", 0.002, 0.18, LEVEL * 2);
    osc.frequency.exponentialRampToValueAtTime(45, t + 0.15);
    return;
  }
  // a snare or a hat: a burst of noise, higher for the hats
  const length = n % 3 === 0 ? 0.06 : 0.14;
  const buffer = ctx.createBuffer(1, Math.ceil(ctx.sampleRate * length), ctx.sampleRate);
  const data = buffer.getChannelData(0);
  for (let i = 0; i < data.length; i++) data[i] = Math.random() * 2 - 1;
  const noise = ctx.createBufferSource();
  noise.buffer = buffer;
  const filter = ctx.createBiquadFilter();
  filter.type = "highpass";
  filter.frequency.value = n % 3 === 0 ? 7000 : 1500;
  noise.connect(filter);
  filter.connect(envelope(ctx, t, 0.001, length));
  noise.start(t);
}

/**
 * Play a preview of `key` on the track (`mode` from the billboard: drums, scale,
 * chord_tones, chord; `track` its name). Call it from a user gesture: browsers only
 * start audio there. `shift` is the octave the caller chose with * and #.
 */
export function preview(key, mode, track, shift = 0) {
  const ctx = context();
  if (!ctx) return;
  const t = ctx.currentTime;
  if (mode === "drums") return drum(ctx, t, key);
  if (key === "*" || key === "#") {
    tone(ctx, t, key === "*" ? 220 : 880, "sine", 0.005, 0.08, LEVEL / 2); // a blip: octave moved
    return;
  }
  const index = key === "0" ? 9 : Number(key) - 1;
  const low = track === "bass" ? 41.2 : track === "pad" || track === "chords" ? 130.8 : 261.6;
  const steps = mode === "chord_tones" ? CHORD : MAJOR;
  const hz = low * 2 ** ((steps[index] ?? 0) / 12 + shift);
  if (mode === "chord") {
    for (const third of [0, 4, 7]) tone(ctx, t, hz * 2 ** (third / 12), "triangle", 0.01, 0.35, LEVEL / 2);
    return;
  }
  const type = { bass: "sawtooth", lead: "square", bells: "sine", pad: "triangle" }[track] ?? "triangle";
  const length = track === "pad" ? 0.4 : track === "bells" ? 0.5 : 0.2;
  const attack = track === "pad" ? 0.08 : 0.004;
  tone(ctx, t, hz, type, attack, length, type === "square" || type === "sawtooth" ? LEVEL / 2 : LEVEL);
}
