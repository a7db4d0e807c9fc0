// The key's DTMF tone through WebAudio: the two ITU-T Q.23 frequencies, about 120 ms.

const ROW = { 1: 697, 2: 697, 3: 697, 4: 770, 5: 770, 6: 770, 7: 852, 8: 852, 9: 852, "*": 941, 0: 941, "#": 941 };
const COLUMN = { 1: 1209, 4: 1209, 7: 1209, "*": 1209, 2: 1336, 5: 1336, 8: 1336, 0: 1336, 3: 1477, 6: 1477, 9: 1477, "#": 1477 };
const TONE_S = 0.12;

let audio = null;

/** Play `key`'s tone. Call it from a user gesture: browsers only start audio there. */
export function playTone(key) {
  const Ctx = window.AudioContext || window.webkitAudioContext;
  if (!Ctx || !(key in ROW)) return;
  audio ??= new Ctx();
  if (audio.state === "suspended") audio.resume();
  const t = audio.currentTime;
  const gain = audio.createGain();
  // A 5 ms ramp in and out: a tone switched on or off abruptly clicks.
  gain.gain.setValueAtTime(0, t);
  gain.gain.linearRampToValueAtTime(0.2, t + 0.005);
  gain.gain.setValueAtTime(0.2, t + TONE_S - 0.005);
  gain.gain.linearRampToValueAtTime(0, t + TONE_S);
  gain.connect(audio.destination);
  for (const hz of [ROW[key], COLUMN[key]]) {
    const osc = audio.createOscillator();
    osc.frequency.value = hz;
    osc.connect(gain);
    osc.start(t);
    osc.stop(t + TONE_S);
  }
}
