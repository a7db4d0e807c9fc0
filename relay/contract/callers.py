"""The billboard's word to each keypad, on ``NAME:callers`` (the README's "The relay
protocol"): a phone hears its own news and a small digest, never the whole `state`.

- ``assign`` (`Place`): the caller's track and colour, or their place in line; on this
  channel it also says how the caller's keys play (`mode`) and which bays of the
  facade are theirs (`region`: the first bay from the left and how many).
- ``leave`` (the contract's `Left`): the caller's turn ended; a kick says for how long
  they are refused (`ban_s`).
- ``notice`` (`Notice`): a word for one caller that changes nothing of their place
  (``paused``: they wait because the operator rests the building; ``unbanned``: the
  operator undid their kick, so they may play again at once).
- ``digest`` (`Digest`): for every keypad, at most once a second and only on change
  (or every `DIGEST_KEEPALIVE_S`, so a keypad can tell a silent billboard from a
  quiet one): tempo, key, scale, how many play and wait, the facade's bays, paused.
  It names nobody.

Every event but the digest names its `caller`: `addressee` tells the relay whom to
deliver it to, and only that caller's keypads receive it. `read_callers` is total.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from .events import (
    FACADE_MAX,
    KEY_NAME_MAX,
    SCALE_NAME_MAX,
    TEMPO_MAX_BPM,
    Assign,
    Left,
    Refused,
    is_caller_id,
    read_billboard,
)

# How a track turns keys into notes (billboard/engine/tracks.py's modes): the keypad
# says it in a line ("each key picks a beat", "1–9 play notes of the chord").
PLAY_MODES: Final = ("drums", "scale", "chord_tones", "chord")
NOTICE_CODES: Final = ("paused", "unbanned")
CALLERS_EVENTS: Final = ("assign", "leave", "notice", "digest")
DIGEST_MIN_INTERVAL_S: Final = 1.0
DIGEST_KEEPALIVE_S: Final = 10.0
COUNT_MAX: Final = 1_000_000


@dataclass(frozen=True, slots=True)
class Place:
    """A caller's place as their keypad hears it: `Assign` with how their keys play and
    their bays of the facade (first, count), when they hold a track."""

    assign: Assign
    mode: str | None = None
    region: tuple[int, int] | None = None

    @property
    def caller(self) -> str:
        return self.assign.caller

    def to_data(self) -> dict[str, Any]:
        data = self.assign.to_data()
        if self.mode is not None:
            data["mode"] = self.mode
        if self.region is not None:
            data["region"] = list(self.region)
        return data


@dataclass(frozen=True, slots=True)
class Notice:
    caller: str
    code: str

    def to_data(self) -> dict[str, Any]:
        return {"event": "notice", "caller": self.caller, "code": self.code}


@dataclass(frozen=True, slots=True)
class Digest:
    """What every keypad may know of the show (no caller's id or label)."""

    tempo: float
    key: str
    scale: str
    playing: int
    waiting: int
    bays: int
    paused: bool = False

    def to_data(self) -> dict[str, Any]:
        return {
            "event": "digest",
            "tempo": round(self.tempo),
            "key": self.key,
            "scale": self.scale,
            "playing": self.playing,
            "waiting": self.waiting,
            "bays": self.bays,
            "paused": self.paused,
        }


CallersEvent = Place | Left | Notice | Digest


def addressee(data: Mapping[str, Any]) -> str | None:
    """The caller an event on ``NAME:callers`` is for; None for the digest (everyone).
    Read from an event `read_callers` took, so the caller is a valid id."""
    caller = data.get("caller")
    return caller if isinstance(caller, str) else None


def _count(value: object, most: int = COUNT_MAX) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= most:
        return None
    return value


def read_callers(data: object) -> CallersEvent | Refused:
    """Read one ``data`` object for ``NAME:callers``; the relay fans out only what this
    returns (its `to_data`), so an unknown field never reaches a phone."""
    if not isinstance(data, Mapping):
        return Refused("bad_event", "an event must be a JSON object")
    kind = data.get("event")
    if kind == "digest":
        return _read_digest(data)
    if kind == "notice":
        caller, code = data.get("caller"), data.get("code")
        if not is_caller_id(caller) or code not in NOTICE_CODES:
            return Refused("bad_event", f"a notice needs a caller and one of {NOTICE_CODES}")
        return Notice(str(caller), str(code))
    if kind not in ("assign", "leave"):
        return Refused("bad_event", f"the callers channel carries {', '.join(CALLERS_EVENTS)}")
    event = read_billboard(data)
    if isinstance(event, Refused | Left):
        return event
    assert isinstance(event, Assign)
    mode, region = data.get("mode"), data.get("region")
    if mode is not None and mode not in PLAY_MODES:
        return Refused("bad_event", f'"mode" must be one of {", ".join(PLAY_MODES)}')
    if region is not None:
        first, count = (
            (_count(region[0], FACADE_MAX - 1), _count(region[1], FACADE_MAX))
            if isinstance(region, list) and len(region) == 2
            else (None, None)
        )
        if first is None or count is None:
            return Refused("bad_event", '"region" must be [first bay, how many]')
        region = (first, count)
    return Place(event, mode if isinstance(mode, str) else None, region)


def _read_digest(data: Mapping[str, Any]) -> Digest | Refused:
    tempo, key, scale = data.get("tempo"), data.get("key"), data.get("scale")
    playing, waiting = _count(data.get("playing")), _count(data.get("waiting"))
    bays, paused = _count(data.get("bays"), FACADE_MAX), data.get("paused", False)
    if (
        isinstance(tempo, bool)
        or not isinstance(tempo, int | float)
        or not 0 < tempo <= TEMPO_MAX_BPM * 4
    ):
        return Refused("bad_digest", 'a digest needs "tempo" in beats a minute')
    if not isinstance(key, str) or not isinstance(scale, str):
        return Refused("bad_digest", 'a digest needs "key" and "scale" names')
    if playing is None or waiting is None or not bays or not isinstance(paused, bool):
        return Refused("bad_digest", "a digest's counts, bays or paused are malformed")
    return Digest(
        float(tempo), key[:KEY_NAME_MAX], scale[:SCALE_NAME_MAX], playing, waiting, bays, paused
    )
