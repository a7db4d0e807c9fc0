// The dialjam contract for the web pages, generated from relay/contract by
// `python -m relay.contract web/js/contract.js`: do not edit by hand.

export const CONTRACT = Object.freeze({
  "keys": "0123456789*#",
  "key_names": [
    "C",
    "C#",
    "D",
    "D#",
    "E",
    "F",
    "F#",
    "G",
    "G#",
    "A",
    "A#",
    "B"
  ],
  "scale_names": [
    "major",
    "minor",
    "dorian",
    "mixolydian",
    "pentatonic",
    "minor_pentatonic"
  ],
  "style_names": [
    "pop",
    "house",
    "hiphop",
    "none"
  ],
  "events": {
    "join": "join",
    "digit": "digit",
    "leave": "leave",
    "command": "command",
    "assign": "assign",
    "state": "state",
    "notice": "notice",
    "digest": "digest"
  },
  "leave_reasons": {
    "closed": "closed",
    "full": "full",
    "hangup": "hangup",
    "idle": "idle",
    "kicked": "kicked",
    "lost": "lost",
    "timeout": "timeout",
    "turn": "turn"
  },
  "public_leave_reasons": [
    "closed",
    "hangup",
    "lost",
    "timeout"
  ],
  "commands": {
    "end_calls": "end_calls",
    "key": "key",
    "kick": "kick",
    "midi_sync": "midi_sync",
    "mute": "mute",
    "panic": "panic",
    "pause": "pause",
    "scale": "scale",
    "style": "style",
    "tempo": "tempo",
    "unban": "unban"
  },
  "web_source": "web",
  "channel_pattern": "[A-Za-z0-9_.:-]{1,64}",
  "default_channel": "dialjam",
  "suffixes": {
    "state": ":state",
    "control": ":control",
    "callers": ":callers"
  },
  "nick_max": 16,
  "caller_max_digits": 4,
  "tempo_min_bpm": 40,
  "tempo_max_bpm": 240,
  "facade_max": 64,
  "play_modes": {
    "drums": "drums",
    "scale": "scale",
    "chord_tones": "chord_tones",
    "chord": "chord"
  },
  "notices": {
    "paused": "paused",
    "unbanned": "unbanned"
  },
  "digest_keepalive_s": 10.0
});

export const KEYS = CONTRACT.keys;
export const KEY_NAMES = CONTRACT.key_names;
export const SCALE_NAMES = CONTRACT.scale_names;
export const STYLE_NAMES = CONTRACT.style_names;
export const EVENT = CONTRACT.events;
export const LEAVE_REASON = CONTRACT.leave_reasons;
export const COMMAND = CONTRACT.commands;
export const WEB_SOURCE = CONTRACT.web_source;
export const CHANNEL_ID = new RegExp(`^${CONTRACT.channel_pattern}$`);
export const DEFAULT_CHANNEL = CONTRACT.default_channel;
export const NICK_MAX = CONTRACT.nick_max;
export const CALLER_MAX_DIGITS = CONTRACT.caller_max_digits;
export const MIN_BPM = CONTRACT.tempo_min_bpm;
export const MAX_BPM = CONTRACT.tempo_max_bpm;
export const FACADE_MAX = CONTRACT.facade_max;
export const PLAY_MODE = CONTRACT.play_modes;
export const NOTICE = CONTRACT.notices;
export const DIGEST_KEEPALIVE_S = CONTRACT.digest_keepalive_s;

/** NAME:state, NAME:control, NAME:callers of the installation `name`. */
export const stateChannel = (name) => `${name}${CONTRACT.suffixes.state}`;
export const controlChannel = (name) => `${name}${CONTRACT.suffixes.control}`;
export const callersChannel = (name) => `${name}${CONTRACT.suffixes.callers}`;
