"""The billboard's settings: defaults < the `[billboard]` table of the installation's
TOML file (with `[billboard.facade]` and `[[billboard.tracks]]`) < flags.

The file is read once, by `relay.config.load_installation`, with the relay's and the
gateways' tables (the embedded relay runs on those); this module reads the billboard's
table from what it read."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from relay.config import ConfigError, Installation, check_not_installation_wide, coerce

from .engine import EngineConfig, Facade, TrackSpec
from .engine.bed import NO_BED, STYLES
from .engine.harmony import SCALES, parse_key, parse_progression
from .engine.tracks import DEFAULT_TRACKS, MODES

_COLOR = re.compile(r"#[0-9a-fA-F]{6}")


@dataclass(frozen=True)
class BillboardConfig:
    # Relay: empty `relay` runs the relay in this process (the same code as
    # `python -m relay`); ws(s)://host/ws connects out to a remote one instead.
    relay: str = ""
    channel: str = ""  # empty: the [relay] table's channel (default dialjam)
    token: str = ""  # the billboard token of a remote relay
    # Music.
    bpm: float = 112.0
    swing: float = 0.1
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
    # Sound and MIDI.
    sound: bool = True
    sound_buffer: int = 256
    midi_port: str = ""  # substring of an output port's name; empty: no MIDI
    midi_virtual: str = ""  # create a virtual output port of this name
    midi_api: str = ""  # alsa | jack | coremidi | winmm; empty: rtmidi's default
    floors: int = 7
    bays: int = 8
    windows: tuple[tuple[float, float, float, float], ...] = ()
    tracks: tuple[TrackSpec, ...] = field(default=DEFAULT_TRACKS)

    def engine_config(self) -> EngineConfig:
        return EngineConfig(
            tracks=self.tracks,
            bpm=self.bpm,
            swing=self.swing,
            key=self.key,
            scale=self.scale,
            progression=parse_progression(self.progression),
            style=self.style,
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
        )

    def window_size(self) -> tuple[int, int] | None:
        if not self.size:
            return None
        w, _, h = self.size.lower().partition("x")
        return int(w), int(h)


_SCALARS = {
    f.name: str(f.type) for f in fields(BillboardConfig) if f.name not in ("windows", "tracks")
}
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
        elif key in _SCALARS:
            values[key] = coerce(_SCALARS[key], key, value, origin)
        else:
            known = ", ".join(sorted([*_SCALARS, "facade", "tracks"]))
            raise ConfigError(f"{origin} has no setting {key!r} (known: {known})")
    for key, value in (overrides or {}).items():
        if value is not None:
            values[key] = coerce(_SCALARS[key], key, value, f"--{key.replace('_', '-')}")
    config = BillboardConfig(**values)
    _validate(config)
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
    if config.midi_api and config.midi_api not in ("alsa", "jack", "coremidi", "winmm"):
        raise ConfigError("midi_api must be alsa, jack, coremidi or winmm")
    if not 0 <= config.line_max <= 100_000:
        raise ConfigError("line_max must be 0–100000 callers")
    if not config.line_idle_s > 0:
        raise ConfigError("line_idle_s must be more than 0 seconds")
    if not 0 <= config.swing <= 0.5:
        raise ConfigError("swing must be 0–0.5")
    if not 128 <= config.sound_buffer <= 4096:
        raise ConfigError("sound_buffer must be 128–4096 frames")


__all__ = ["BillboardConfig", "ConfigError", "load_billboard_config"]
