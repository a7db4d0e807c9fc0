"""The billboard's settings: defaults < the `[billboard]` table of the installation's
TOML file (with `[billboard.facade]`, `[[billboard.tracks]]` and `[billboard.lights]`,
read by `billboard/lights/settings.py`) < flags.

MIDI channels are 1–16 in the file, as on every synth's front panel, and 0–15 inside.

The file is read once, by `relay.config.load_installation`, with the relay's and the
gateways' tables (the embedded relay runs on those); this module reads the billboard's
table from what it read."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from relay.config import ConfigError, Installation, check_not_installation_wide, coerce

from .engine import EngineConfig, Facade, TrackSpec
from .engine.bed import DEFAULT_VOICES, NO_BED, PITCHED_PARTS, STYLES, BedVoice
from .engine.harmony import SCALES, parse_key, parse_progression
from .engine.tracks import DEFAULT_TRACKS, MODES
from .lights.settings import LightsConfig, check_lights, parse_lights
from .projection import Projection, default_projection
from .projection.table import parse_projection, resolve_projection

_COLOR = re.compile(r"#[0-9a-fA-F]{6}")
_DRUM_CHANNEL = 9  # GM's drum channel, 10 on a synth's panel
_BED_TABLES = ("bed_channels", "bed_programs")
LAYOUTS = ("dashboard", "projection")


@dataclass(frozen=True)
class BillboardConfig:
    # Relay: empty `relay` runs the relay in this process (the same code as
    # `python -m relay`); ws(s)://host/ws connects out to a remote one instead.
    relay: str = ""
    channel: str = ""  # empty: the [relay] table's channel (default dialjam)
    token: str = ""  # the billboard token of a remote relay
    # Music.
    bpm: float = 112.0
    swing: float | None = None  # None: the style's swing (pop 0.1, house 0, hiphop 0.22)
    humanise_ms: float = 4.0  # notes on their step sound up to this late (0: on the grid)
    key: str = "C"
    scale: str = "major"
    progression: str = "I-V-vi-IV"
    style: str = "pop"  # the groove bed: pop, house, hiphop, or none
    idle_s: float = 30.0
    turn_s: float = 180.0
    kick_ban_s: float = 120.0
    line_max: int = 200
    line_idle_s: float = 600.0
    grace_ms: float = 30.0
    loop_bars: int = 2
    fade_bars: int = 4
    attract_after_s: float = 20.0
    seed: int = 2010
    # Screen.
    phone: str = ""  # the number on the banner ("+1 415 555 0100")
    display: int = 0
    windowed: bool = False
    size: str = ""  # "1920x1080"; empty: the display's size
    # "dashboard": banner, facade, beat strip and legend on a flat screen; "projection":
    # the whole output is the building, mapped by `projection` (the default when the
    # file has a [billboard.projection] table).
    layout: str = "dashboard"
    projection: Projection | None = None
    # Sound and MIDI.
    sound: bool = True
    sound_buffer: int = 256
    midi_port: str = ""  # substring of an output port's name; empty: no MIDI
    midi_virtual: str = ""  # create a virtual output port of this name
    midi_api: str = ""  # alsa | jack | coremidi | winmm; empty: rtmidi's default
    # The music down the phone line (billboard/phone_out.py): the phone mixes rendered
    # and sent to the relay's /phone-audio for its voice gateways to play to the calls.
    # false (or --no-phone-music): no mixer, no link, nothing spent on it.
    phone_music: bool = True
    floors: int = 7
    bays: int = 8
    windows: tuple[tuple[float, float, float, float], ...] = ()
    tracks: tuple[TrackSpec, ...] = field(default=DEFAULT_TRACKS)
    # The groove bed's pitched parts on MIDI channels of their own, each with its GM
    # program (engine/bed.py): `bed_channels` and `bed_programs` in the file.
    bed_voices: tuple[BedVoice, ...] = field(default=DEFAULT_VOICES)
    # DMX fixtures behind the windows (Art-Net or sACN): off unless a protocol is set.
    lights: LightsConfig = field(default_factory=LightsConfig)

    def bed_midi(self) -> tuple[BedVoice, ...]:
        """The bed's voices for the MIDI out and the recording: none without a bed."""
        return () if self.style == NO_BED else self.bed_voices

    def engine_config(self) -> EngineConfig:
        return EngineConfig(
            tracks=self.tracks,
            bpm=self.bpm,
            swing=self.swing,
            key=self.key,
            scale=self.scale,
            progression=parse_progression(self.progression),
            style=self.style,
            bed_voices=self.bed_voices,
            idle_s=self.idle_s,
            turn_s=self.turn_s,
            kick_ban_s=self.kick_ban_s,
            line_max=self.line_max,
            line_idle_s=self.line_idle_s,
            grace_s=self.grace_ms / 1000,
            loop_bars=self.loop_bars,
            fade_bars=self.fade_bars,
            attract_after_s=self.attract_after_s,
            facade=Facade(self.floors, self.bays),
            seed=self.seed,
            humanise_s=self.humanise_ms / 1000,
        )

    def window_size(self) -> tuple[int, int] | None:
        if not self.size:
            return None
        w, _, h = self.size.lower().partition("x")
        return int(w), int(h)


_SCALARS = {
    f.name: str(f.type)
    for f in fields(BillboardConfig)
    if f.name not in ("windows", "tracks", "bed_voices", "lights", "projection")
}
# Flags that set a setting of `[billboard.lights]`: --lights, --lights-target.
_LIGHTS_FLAGS = {"lights": "protocol", "lights_target": "target"}
_TRACK_KEYS = {f.name: str(f.type) for f in fields(TrackSpec)}
# A track's velocity and its place in the mix have defaults; the rest must be given.
_TRACK_OPTIONAL = frozenset({"velocity", "pan", "gain_db", "reverb", "delay"})


def load_billboard_config(
    installation: Installation, overrides: Mapping[str, Any] | None = None
) -> BillboardConfig:
    """The `[billboard]` table of the installation's file (see
    `relay.config.load_installation`), with flag `overrides` (None: not given); raises
    `ConfigError` with a message for the operator."""
    values: dict[str, Any] = {}
    table = installation.table("billboard") or {}
    path = installation.path
    origin = installation.origin("billboard")
    check_not_installation_wide(table, origin)
    for key, value in table.items():
        if key == "facade":
            values.update(_facade(value, f"{path} [billboard.facade]"))
        elif key == "tracks":
            values["tracks"] = _tracks(value, f"{path} [[billboard.tracks]]")
        elif key == "lights":
            values["lights"] = parse_lights(value, f"{path} [billboard.lights]")
        elif key == "projection":
            values["projection"] = parse_projection(value, f"{path} [billboard.projection]")
        elif key in _SCALARS:
            values[key] = coerce(_SCALARS[key], key, value, origin)
        elif key not in _BED_TABLES:
            tables = ("facade", "tracks", "lights", "projection")
            known = ", ".join(sorted([*_SCALARS, *_BED_TABLES, *tables]))
            raise ConfigError(f"{origin} has no setting {key!r} (known: {known})")
    if any(key in table for key in _BED_TABLES):
        values["bed_voices"] = _bed_voices(table, origin)
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        flag = f"--{key.replace('_', '-')}"
        if key in _LIGHTS_FLAGS:
            lights = values.get("lights", LightsConfig())
            setting = _LIGHTS_FLAGS[key]
            text = "" if value == "off" else coerce("str", setting, value, flag)
            values["lights"] = replace(lights, **{setting: text})
        else:
            values[key] = coerce(_SCALARS[key], key, value, flag)
    if "layout" not in values and "projection" in values:
        values["layout"] = "projection"  # a mapped building is meant to be projected on
    config = BillboardConfig(**values)
    _validate(config)
    config = replace(config, lights=check_lights(config.lights, config.floors, config.bays))
    if config.layout == "projection":
        given = config.projection or default_projection(config.floors, config.bays)
        config = replace(config, projection=resolve_projection(given, config.floors, config.bays))
    return config


def _facade(value: Any, origin: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{origin} must be a table")
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key in ("floors", "bays"):
            out[key] = coerce("int", key, item, origin)
        elif key == "windows":
            out["windows"] = _windows(item, origin)
        else:
            raise ConfigError(f"{origin} has no setting {key!r} (known: floors, bays, windows)")
    return out


def _windows(value: Any, origin: str) -> tuple[tuple[float, float, float, float], ...]:
    """Per-window rectangles (x, y, w, h) as fractions of the facade, row by row."""
    if not isinstance(value, list):
        raise ConfigError(f"{origin}: windows must be a list of [x, y, w, h]")
    rects = []
    for n, rect in enumerate(value):
        ok = isinstance(rect, list) and len(rect) == 4
        ok = ok and all(isinstance(v, int | float) and 0 <= v <= 1 for v in rect)
        if not ok:
            raise ConfigError(
                f"{origin}: window {n + 1} must be [x, y, w, h], fractions between 0 and 1"
            )
        x, y, w, h = (float(v) for v in rect)
        rects.append((x, y, w, h))
    return tuple(rects)


def _tracks(value: Any, origin: str) -> tuple[TrackSpec, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{origin}: give at least one track")
    specs = []
    for n, item in enumerate(value):
        where = f"{origin} #{n + 1}"
        if not isinstance(item, dict):
            raise ConfigError(f"{where} must be a table")
        unknown = set(item) - set(_TRACK_KEYS)
        if unknown:
            raise ConfigError(f"{where} has no setting {sorted(unknown)[0]!r}")
        args: dict[str, Any] = {}
        for key, kind in _TRACK_KEYS.items():
            if key not in item:
                if key in _TRACK_OPTIONAL:
                    continue
                raise ConfigError(f"{where} needs {key!r}")
            args[key] = coerce("str" if kind.startswith("Mode") else kind, key, item[key], where)
        # MIDI channels are 1–16 in the file, as on every synth's front panel.
        if not 1 <= args["channel"] <= 16:
            raise ConfigError(f"{where}: channel must be 1–16")
        args["channel"] -= 1
        if args["mode"] not in MODES:
            raise ConfigError(f"{where}: mode must be one of {', '.join(MODES)}")
        if not _COLOR.fullmatch(args["color"]):
            raise ConfigError(f"{where}: color must look like #8a5cf6")
        if not 0 <= args["program"] <= 127 or not 1 <= args["length"] <= 64:
            raise ConfigError(f"{where}: program must be 0–127 and length 1–64 steps")
        if not -1 <= args.get("pan", 0) <= 1:
            raise ConfigError(f"{where}: pan must be -1 (left) to 1 (right)")
        if not -60 <= args.get("gain_db", 0) <= 0:
            raise ConfigError(f"{where}: gain_db must be -60 to 0 (a fader turns down)")
        if not (0 <= args.get("reverb", 0) <= 1 and 0 <= args.get("delay", 0) <= 1):
            raise ConfigError(f"{where}: reverb and delay are sends, 0 to 1")
        specs.append(TrackSpec(**args))
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ConfigError(f"{origin}: track names must differ")
    return tuple(specs)


def _bed_voices(table: Mapping[str, Any], origin: str) -> tuple[BedVoice, ...]:
    """The bed's voices: the defaults, changed for the parts that `bed_channels` (1–16)
    and `bed_programs` (GM, 0–127) name."""
    voices = {voice.part: voice for voice in DEFAULT_VOICES}
    for key, low, high in (("bed_channels", 1, 16), ("bed_programs", 0, 127)):
        given = table.get(key, {})
        if not isinstance(given, dict):
            raise ConfigError(
                f"{origin}: {key} must be a table such as {{ bass = …, chords = …, pad = … }}"
            )
        for part, value in given.items():
            if part not in PITCHED_PARTS:
                kit = (
                    "; the bed's kit plays on its track's channel, GM's drum channel 10, "
                    "the only one a GM synth plays drums on"
                    if part in ("drums", "kit", "kick", "snare", "hat", "open_hat")
                    else ""
                )
                raise ConfigError(
                    f"{origin}: {key} has no part {part!r} (the bed's parts of their own: "
                    f"{', '.join(PITCHED_PARTS)}){kit}"
                )
            number = coerce("int", f"{key}.{part}", value, origin)
            if not low <= number <= high:
                raise ConfigError(f"{origin}: {key}.{part} must be {low}–{high}, not {number}")
            voice = voices[part]
            voices[part] = (
                replace(voice, channel=number - 1)
                if key == "bed_channels"
                else replace(voice, program=number)
            )
    return tuple(voices[part] for part in PITCHED_PARTS)


def _check_bed_channels(config: BillboardConfig) -> None:
    """Each pitched part of the bed on a channel of its own: not GM's drum channel, not
    another part's, not a track's (a synth could not tell the bed from the caller
    there). Without a bed there is nothing to check. The bed's kit shares the drum
    track's channel, as it must on a GM synth: it is no `BedVoice`."""
    if config.style == NO_BED:
        return
    used = {track.channel for track in config.tracks} | {_DRUM_CHANNEL}
    used |= {voice.channel for voice in config.bed_voices}
    free = next((c + 1 for c in range(16) if c not in used), None)

    def fix(part: str) -> str:
        return f"e.g. bed_channels = {{ {part} = {free} }}" if free else "no channel is free"

    parts: dict[int, str] = {}
    for voice in config.bed_voices:
        channel = voice.channel + 1
        if voice.channel == _DRUM_CHANNEL:
            raise ConfigError(
                f"bed_channels: the bed's {voice.part} on channel 10, GM's drum channel, "
                f"would sound as drums on a GM synth; give it another ({fix(voice.part)})"
            )
        other = parts.setdefault(voice.channel, voice.part)
        if other != voice.part:
            raise ConfigError(
                f"bed_channels: the bed's {other} and {voice.part} are both on channel "
                f"{channel}; each part needs its own ({fix(voice.part)})"
            )
        for track in config.tracks:
            if track.channel == voice.channel:
                raise ConfigError(
                    f"bed_channels: the bed's {voice.part} on channel {channel} collides "
                    f"with track {track.name!r} on channel {channel}: a synth could not tell "
                    f"the bed from the track's caller; give the bed another channel "
                    f"({fix(voice.part)})"
                )


def _validate(config: BillboardConfig) -> None:
    try:
        parse_key(config.key)
        parse_progression(config.progression)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if config.scale not in SCALES:
        raise ConfigError(f"scale must be one of {', '.join(SCALES)}")
    if config.style not in (*STYLES, NO_BED):
        raise ConfigError(f"style must be one of {', '.join(STYLES)}, {NO_BED}")
    if config.relay and not config.relay.startswith(("ws://", "wss://")):
        raise ConfigError(f"relay {config.relay!r} must start with ws:// or wss://")
    if config.size:
        w, sep, h = config.size.lower().partition("x")
        if not (sep and w.isdigit() and h.isdigit() and int(w) >= 320 and int(h) >= 200):
            raise ConfigError(f"size {config.size!r} must look like 1920x1080")
    if not (1 <= config.floors <= 100 and 1 <= config.bays <= 100):
        raise ConfigError("facade floors and bays must be 1–100")
    if config.windows and len(config.windows) != config.floors * config.bays:
        raise ConfigError(
            f"facade windows lists {len(config.windows)} rectangles; "
            f"floors × bays is {config.floors * config.bays}"
        )
    if config.layout not in LAYOUTS:
        raise ConfigError(f"layout must be {' or '.join(LAYOUTS)}, not {config.layout!r}")
    if config.midi_api and config.midi_api not in ("alsa", "jack", "coremidi", "winmm"):
        raise ConfigError("midi_api must be alsa, jack, coremidi or winmm")
    if not 0 <= config.line_max <= 100_000:
        raise ConfigError("line_max must be 0–100000 callers")
    if not config.line_idle_s > 0:
        raise ConfigError("line_idle_s must be more than 0 seconds")
    if config.swing is not None and not 0 <= config.swing <= 0.5:
        raise ConfigError("swing must be 0–0.5")
    if not 0 <= config.humanise_ms <= 20:
        raise ConfigError("humanise_ms must be 0–20 milliseconds")
    if not 128 <= config.sound_buffer <= 4096:
        raise ConfigError("sound_buffer must be 128–4096 frames")
    _check_bed_channels(config)


__all__ = ["BillboardConfig", "ConfigError", "load_billboard_config"]
