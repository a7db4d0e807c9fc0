"""The events the installation speaks (the README's "The relay protocol"), their
writers and readers.

Every reader here is total: it takes any JSON value and returns an event or a
`Refused` naming what was wrong; it never raises. A value from the street is data,
never control, so anything this module cannot read is counted and dropped by the
caller, not trusted a little.

In (on the installation's channel ``NAME``): `Join`, `Digit`, `Leave`, and the 2010
seed form ``{"caller_id": NUMBER, "command": KEY}`` (`SeedDigit`), read by
`read_public`. In on ``NAME:control`` only: `Command` (`read_command`). Out, from the
billboard on ``NAME:state``: `Assign`, `Left` (a ``leave`` the billboard decided) and
`State` (`read_billboard`). Every event's ``data`` shape is its `to_data`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from .privacy import masked, number_digits
from .scene import (
    BANNED_MAX,
    Banned,
    Banner,
    Light,
    TrackState,
    Waiting,
    read_activity,
    read_banner,
)

# The sixteen keys a phone has, in RFC 4733's order (§3.2, Table 1: events 0–9 are the
# digits, 10 is *, 11 is #, 12–15 are A–D) …
DTMF_KEYS: Final = "0123456789*#ABCD"
# … and the twelve of a phone's pad and of the web keypad, which play (A–D are ignored).
KEYPAD_KEYS: Final = DTMF_KEYS[:12]
KEYS: Final = frozenset(DTMF_KEYS)
PLAY_KEYS: Final = frozenset(KEYPAD_KEYS)

# A caller pseudonym ("c-" and ten consonants from `privacy.pseudonym`); any short token
# of this alphabet is read as a caller id, as long as it holds at most four digits: a
# longer run could be a phone number, which never travels.
CALLER_ID: Final = re.compile(r"[A-Za-z][A-Za-z0-9_.:-]{0,39}")
CALLER_MAX_DIGITS: Final = 4
NICK_MAX: Final = 16
SOURCE_MAX: Final = 16
# Every event's name: in from the street (join, digit, leave), from the console
# (command), out from the billboard (assign, leave, state; and on ``:callers`` notice
# and digest, relay/contract/callers.py).
EVENTS: Final = ("join", "digit", "leave", "command", "assign", "state", "notice", "digest")
# Where a caller comes from: a name of the path ("twilio", "ari", "seed"); a keypad is "web".
WEB_SOURCE: Final = "web"
# Why a caller left: from a gateway or keypad (``hangup``: the call ended; ``timeout``;
# ``closed``: a keypad's last socket closed; ``lost``: the gateway no longer hears the
# call, which may still be up — its provider is unreachable, or another client took the
# app — and the caller comes back with a ``join`` if the gateway finds the call again) …
PUBLIC_LEAVE_REASONS: Final = frozenset({"hangup", "timeout", "closed", "lost"})
# … and from the billboard (`idle`, `turn`, `kicked`, `full`: the line is full).
BILLBOARD_LEAVE_REASONS: Final = frozenset({"idle", "turn", "kicked", "full"})
LEAVE_REASONS: Final = PUBLIC_LEAVE_REASONS | BILLBOARD_LEAVE_REASONS
# end_calls: every phone call ends (each gateway of the relay hangs up; keypads stay).
COMMANDS: Final = frozenset(
    {"kick", "unban", "mute", "tempo", "key", "scale", "style", "panic", "pause", "midi_sync"}
    | {"end_calls"}
)
KEY_NAME_MAX: Final = 8  # "C#", "Bb", "f♯": the engine decides which it knows
SCALE_NAME_MAX: Final = 32
# The keys as a `state` names them (sharps; a ``key`` command may also say "Bb" or
# "f♯"), and the scales a ``scale`` command may choose: the engine plays exactly these.
KEY_NAMES: Final = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
SCALE_NAMES: Final = ("major", "minor", "dorian", "mixolydian", "pentatonic", "minor_pentatonic")
# The groove bed's styles a ``style`` command may choose ("none": callers alone), in the
# order the console offers them: the engine plays exactly these.
STYLE_NAMES: Final = ("pop", "house", "hiphop", "none")
STYLE_NAME_MAX: Final = 32
# The engine's tempo range: a ``tempo`` command's bpm is clamped into it.
TEMPO_MIN_BPM: Final = 40.0
TEMPO_MAX_BPM: Final = 240.0
# A ``tempo`` beyond this is refused rather than clamped: it is not a tempo at all.
BPM_LIMIT: Final = 1000.0
# A facade is at most this many floors and bays (a ``state`` stays small).
FACADE_MAX: Final = 64
TRACKS_MAX: Final = 64


@dataclass(frozen=True, slots=True)
class Join:
    caller: str
    source: str = "web"
    display: str | None = None  # "…12": at most the last two digits of a number
    nick: str | None = None


@dataclass(frozen=True, slots=True)
class Digit:
    caller: str
    digit: str
    source: str = "web"


@dataclass(frozen=True, slots=True)
class Leave:
    caller: str
    reason: str = "hangup"


@dataclass(frozen=True, slots=True)
class Command:
    """An operator's command; `args` is already checked for its name (`read_command`)."""

    name: str
    args: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SeedDigit:
    """The 2010 form: a key from a phone number that has not been pseudonymised yet.
    `number` is personal data: it must become a pseudonym before it goes anywhere."""

    number: str
    digit: str


@dataclass(frozen=True, slots=True)
class Refused:
    """Why a value is not an event: `code` for counters, `message` for a person."""

    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Assign:
    """A caller's place, from the billboard: a track and colour, or `line` > 0 in the
    waiting line (track and colour None)."""

    caller: str
    track: str | None
    color: str | None
    line: int = 0

    def to_data(self) -> dict[str, Any]:
        return {
            "event": "assign",
            "caller": self.caller,
            "track": self.track,
            "color": self.color,
            "line": self.line,
        }


@dataclass(frozen=True, slots=True)
class Left:
    """A caller freed by the billboard: reason ``idle``, ``turn``, ``kicked`` or ``full``
    (on the wire a ``leave``, as a gateway's `Leave` is); a kick says how many seconds
    the caller is refused (`ban_s`, relative: the billboard's and a phone's clocks differ)."""

    caller: str
    reason: str
    ban_s: float | None = None

    def to_data(self) -> dict[str, Any]:
        data = {"event": "leave", "caller": self.caller, "reason": self.reason}
        return data if self.ban_s is None else {**data, "ban_s": round(self.ban_s)}


@dataclass(frozen=True, slots=True)
class State:
    """The billboard's ``state`` (≤ 10 Hz and on change): the music, who plays, the
    front of the line (`line`, `waiting`) and how many wait in all (`line_length`), the
    lit windows, and the billboard's health figures (`hud`). `style` is the groove
    bed's (None from a billboard older than the ``style`` command); `banner` what the
    facade invites with (relay/contract/scene.py); `banned` the callers kicked whose ban
    still runs, the latest first (an operator may lift it: ``unban``)."""

    tempo: float
    key: str
    scale: str
    step: int
    floors: int
    bays: int
    tracks: tuple[TrackState, ...] = ()
    line: tuple[str, ...] = ()
    waiting: tuple[Waiting, ...] = ()
    line_length: int = 0
    lit: tuple[Light, ...] = ()
    attract: bool = False
    paused: bool = False
    hud: Mapping[str, Any] = field(default_factory=dict)
    style: str | None = None
    banner: Banner | None = None
    banned: tuple[Banned, ...] = ()

    def to_data(self) -> dict[str, Any]:
        return {
            "event": "state",
            "tempo": round(self.tempo, 1),
            "key": self.key,
            "scale": self.scale,
            "style": self.style,
            "step": self.step,
            "facade": {"floors": self.floors, "bays": self.bays},
            "tracks": [t.to_data() for t in self.tracks],
            "line": list(self.line),
            "waiting": [{"caller": w.caller, "display": w.display} for w in self.waiting],
            "line_length": self.line_length,
            "lit": [[w.floor, w.bay, w.color, round(w.intensity, 2)] for w in self.lit],
            "attract": self.attract,
            "paused": self.paused,
            "hud": dict(self.hud),
            "banner": self.banner.to_data() if self.banner else None,
            "banned": [b.to_data() for b in self.banned],
        }


PublicEvent = Join | Digit | Leave
InputEvent = Join | Digit | Leave | Command
BillboardEvent = Assign | Left | State
CallerUpdate = Assign | Left


# --- small total cleaners -------------------------------------------------------------


def digit_count(text: str) -> int:
    return len(number_digits(text))


def is_caller_id(value: object) -> bool:
    """A caller id the screen and the logs may carry: the grammar and ≤ 4 digits."""
    return (
        isinstance(value, str)
        and CALLER_ID.fullmatch(value) is not None
        and digit_count(value) <= CALLER_MAX_DIGITS
    )


def clean_nick(nick: object) -> str | None:
    """A nickname as the facade may show it: letters, digits and spaces only, at most
    16 characters, or None. A nickname holding more than four digits could be a phone
    number and is refused."""
    if not isinstance(nick, str):
        return None
    kept = "".join(ch for ch in nick[:256] if ch.isalnum() or ch == " ").strip()
    kept = " ".join(kept.split())[:NICK_MAX].strip()
    if not kept or digit_count(kept) > CALLER_MAX_DIGITS:
        return None
    return kept


def clean_display(display: object) -> str | None:
    """At most the last two digits of a number, as "…12"."""
    if not isinstance(display, str):
        return None
    return masked(display[:64])


def clean_source(source: object) -> str:
    """Where a caller comes from ("twilio", "web"): a short name of letters, digits,
    - and _, with at most four digits (more could be a phone number); else "web"."""
    if (
        isinstance(source, str)
        and 0 < len(source) <= SOURCE_MAX
        and source.isascii()
        and digit_count(source) <= CALLER_MAX_DIGITS
    ):
        return source if source.replace("-", "").replace("_", "").isalnum() else WEB_SOURCE
    return WEB_SOURCE


def _key(value: object) -> str | None:
    """One playable key from a string or an integer 0–9 (seed scripts sent numbers)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and 0 <= value <= 9:
        return str(value)
    if isinstance(value, str):
        key = value.strip()
        if len(key) == 1 and key in PLAY_KEYS:
            return key
    return None


# --- readers --------------------------------------------------------------------------


def read_public(
    data: object, pseudonymise: Callable[[str], str] | None = None
) -> PublicEvent | SeedDigit | Refused:
    """Read one ``data`` object published on the installation's channel.

    A ``caller`` that looks like a phone number (a gateway that forgot to pseudonymise,
    or ``c-15550003333``) becomes ``pseudonymise(number)`` with "…12" to show, or is
    refused when no `pseudonymise` is given: a number never leaves this function as a
    caller id. The seed form is returned as a `SeedDigit` for the caller to
    pseudonymise (and to announce with a join)."""
    if not isinstance(data, Mapping):
        return Refused("bad_event", "an event must be a JSON object")
    kind = data.get("event")
    if kind is None and "command" in data:
        return _read_seed(data)
    if not isinstance(kind, str):
        return Refused("bad_event", 'an event needs "event" as a string')
    if kind == "command":
        return Refused("wrong_channel", "commands are taken only on the :control channel")
    if kind not in ("join", "digit", "leave"):
        return Refused("bad_event", f"unknown event {kind[:16]!r}; expected join, digit or leave")
    caller = data.get("caller")
    if not isinstance(caller, str) or not caller:
        return Refused("bad_caller", '"caller" must be a caller id')
    display = clean_display(data.get("display"))
    if not is_caller_id(caller):
        if pseudonymise is None or not _looks_like_number(caller) or len(caller) > 64:
            return Refused(
                "bad_caller",
                '"caller" must be 1–40 characters of A-Z a-z 0-9 _ . : - with at most 4 digits',
            )
        display = display or masked(caller)
        caller = pseudonymise(caller)
    source = clean_source(data.get("source"))
    if kind == "join":
        return Join(caller, source, display, clean_nick(data.get("nick")))
    if kind == "digit":
        raw = data.get("digit")
        if isinstance(raw, str) and len(raw) == 1 and raw in KEYS - PLAY_KEYS:
            return Refused("ignored_key", f"key {raw} plays nothing")
        key = _key(raw)
        if key is None:
            return Refused("bad_digit", '"digit" must be one of 0-9 * #')
        return Digit(caller, key, source)
    reason = data.get("reason")
    return Leave(
        caller, reason if isinstance(reason, str) and reason in LEAVE_REASONS else "hangup"
    )


def _read_seed(data: Mapping[str, Any]) -> SeedDigit | Refused:
    number = data.get("caller_id", data.get("ani"))
    if isinstance(number, int) and not isinstance(number, bool):
        number = str(number)
    if not isinstance(number, str) or not number.strip() or len(number) > 64:
        return Refused("bad_seed", 'a seed message needs "caller_id" (a number) and "command"')
    key = _key(data.get("command"))
    if key is None:
        return Refused("bad_seed", 'a seed message\'s "command" must be one key: 0-9 * #')
    return SeedDigit(number.strip(), key)


def _looks_like_number(caller: str) -> bool:
    return digit_count(caller) >= 5 or caller.lstrip("+").isdigit()


def read_command(data: object) -> Command | Refused:
    """Read one ``command`` (`COMMANDS`) from ``NAME:control``, its args checked and in
    one shape: kick{caller} unban{caller} (a kick undone: the ban lifted) mute{caller,on}
    tempo{bpm} key{key} scale/style{name} pause{on}; panic{} midi_sync{} end_calls{}
    (every phone call hung up by the relay's gateways, relay/gateways/kicks.py)."""
    if not isinstance(data, Mapping):
        return Refused("bad_command", "a command must be a JSON object")
    if data.get("event") != "command":
        return Refused("bad_command", 'the control channel carries only {"event":"command"}')
    name = data.get("name")
    if not isinstance(name, str) or name not in COMMANDS:
        return Refused(
            "bad_command", f"unknown command; expected one of {', '.join(sorted(COMMANDS))}"
        )
    args = data.get("args", {})
    if args is None:
        args = {}
    if not isinstance(args, Mapping):
        return Refused("bad_command", '"args" must be an object')
    on = args.get("on", True)
    if not isinstance(on, bool):
        return Refused("bad_command", '"on" must be true or false')
    if name in ("kick", "unban", "mute"):
        caller = args.get("caller")
        if not is_caller_id(caller):
            return Refused("bad_command", f"{name} needs a caller id")
        return Command(name, {"caller": caller, "on": on} if name == "mute" else {"caller": caller})
    if name == "tempo":
        bpm = args.get("bpm")
        if (
            isinstance(bpm, bool)
            or not isinstance(bpm, int | float)
            or not math.isfinite(bpm)
            or not 0 < bpm <= BPM_LIMIT
        ):
            return Refused("bad_command", "tempo needs bpm, a number of beats a minute")
        return Command(name, {"bpm": float(bpm)})
    if name == "key":
        key = args.get("key")
        if not isinstance(key, str) or not 0 < len(key.strip()) <= KEY_NAME_MAX:
            return Refused("bad_command", 'key needs a key name such as "C" or "F#"')
        return Command(name, {"key": key.strip()})
    if name == "scale":
        scale = args.get("name")
        if scale not in SCALE_NAMES:
            return Refused("bad_command", f"scale needs one of {', '.join(SCALE_NAMES)}")
        return Command(name, {"name": scale})
    if name == "style":
        style = args.get("name")
        if style not in STYLE_NAMES:
            return Refused("bad_command", f"style needs one of {', '.join(STYLE_NAMES)}")
        return Command(name, {"name": style})
    if name == "pause":
        return Command(name, {"on": on})
    return Command(name, {})


def read_input(data: object) -> InputEvent | None:
    """A public event or a command, for a night's event log (already pseudonymised
    when it was written); None for anything else."""
    if isinstance(data, Mapping) and data.get("event") == "command":
        command = read_command(data)
        return command if isinstance(command, Command) else None
    event = read_public(data)
    return event if isinstance(event, Join | Digit | Leave) else None


_COLOR: Final = re.compile(r"#[0-9a-fA-F]{6}")


def _int(value: object, low: int, high: int) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        return None
    return value


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _shown(value: object) -> str | None:
    """A caller's label as the billboard sends it ("…12", a nickname), or None."""
    if not isinstance(value, str) or not value or len(value) > NICK_MAX + 1:
        return None
    return value if digit_count(value) <= CALLER_MAX_DIGITS else None


def read_billboard(data: object) -> BillboardEvent | Refused:
    """Read one ``data`` object from ``NAME:state``: an ``assign``, a ``leave`` or a
    ``state``. Colours must be ``#rrggbb``; labels hold at most four digits; lists are
    bounded (`TRACKS_MAX`, `FACADE_MAX`), so a reader can draw what it gets."""
    if not isinstance(data, Mapping):
        return Refused("bad_event", "an event must be a JSON object")
    kind = data.get("event")
    if kind == "state":
        return _read_state(data)
    if kind not in ("assign", "leave"):
        return Refused("bad_event", "the state channel carries assign, leave and state")
    caller = data.get("caller")
    if not is_caller_id(caller):
        return Refused("bad_caller", '"caller" must be a caller id')
    assert isinstance(caller, str)
    if kind == "leave":
        reason = data.get("reason")
        ban_s = _number(data.get("ban_s")) if data.get("ban_s") is not None else None
        if not isinstance(reason, str) or reason not in LEAVE_REASONS:
            return Refused("bad_event", "a leave needs a reason")
        return Left(caller, reason, None if ban_s is None else min(max(ban_s, 0.0), 86_400.0))
    track, color, line = data.get("track"), data.get("color"), _int(data.get("line", 0), 0, 2**31)
    if line is None:
        return Refused("bad_event", '"line" must be a place in the line (0: playing)')
    if track is None and color is None:
        return Assign(caller, None, None, line)
    if not isinstance(track, str) or not 0 < len(track) <= 32:
        return Refused("bad_event", '"track" must be a track name or null')
    if not isinstance(color, str) or _COLOR.fullmatch(color) is None:
        return Refused("bad_event", '"color" must be #rrggbb')
    return Assign(caller, track, color, line)


def _read_state(data: Mapping[str, Any]) -> State | Refused:
    tempo, step = _number(data.get("tempo")), _int(data.get("step", 0), 0, 2**63)
    key, scale, style = data.get("key"), data.get("scale"), data.get("style")
    if tempo is None or step is None:
        return Refused("bad_state", 'a state needs "tempo" (a number) and "step" (a count)')
    if not isinstance(key, str) or not isinstance(scale, str):
        return Refused("bad_state", 'a state needs "key" and "scale" names')
    if style is not None and not isinstance(style, str):
        return Refused("bad_state", '"style" must be a style name')
    facade = data.get("facade")
    if not isinstance(facade, Mapping):
        return Refused("bad_state", '"facade" must be {"floors": F, "bays": B}')
    floors, bays = (
        _int(facade.get("floors"), 1, FACADE_MAX),
        _int(facade.get("bays"), 1, FACADE_MAX),
    )
    if floors is None or bays is None:
        return Refused("bad_state", f"a facade is 1–{FACADE_MAX} floors and bays")
    tracks = _list(data.get("tracks"), TRACKS_MAX, _read_track)
    line = _list(data.get("line"), 10_000, lambda c: c if is_caller_id(c) else None)
    waiting = _list(data.get("waiting"), 10_000, _read_waiting)
    lit = _list(data.get("lit"), floors * bays, lambda x: _read_light(x, floors, bays))
    banned = _list(data.get("banned"), BANNED_MAX, _read_banned)
    line_length = _int(data.get("line_length", 0), 0, 2**31)
    hud = data.get("hud", {})
    if tracks is None or line is None or waiting is None or lit is None or banned is None:
        return Refused("bad_state", "a state's tracks, line, waiting, lit or banned is malformed")
    if line_length is None or not isinstance(hud, Mapping):
        return Refused("bad_state", '"line_length" must be a count and "hud" an object')
    attract, paused = data.get("attract", False), data.get("paused", False)
    if not isinstance(attract, bool) or not isinstance(paused, bool):
        return Refused("bad_state", '"attract" and "paused" must be true or false')
    return State(
        tempo, key[:KEY_NAME_MAX], scale[:SCALE_NAME_MAX], step, floors, bays,
        tuple(tracks), tuple(line), tuple(waiting), line_length, tuple(lit), attract, paused,
        dict(hud), style[:STYLE_NAME_MAX] if style is not None else None,
        read_banner(data.get("banner")), tuple(banned),
    )  # fmt: skip


def _list(value: object, most: int, read: Callable[[Any], Any]) -> list[Any] | None:
    """Every item of a JSON list read by `read`; None when it is not a list, is longer
    than `most`, or holds an item `read` refuses (None)."""
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > most:
        return None
    items = [read(item) for item in value]
    return None if any(item is None for item in items) else items


def _read_track(item: object) -> TrackState | None:
    if not isinstance(item, Mapping):
        return None
    name, color, caller, muted = (item.get(k) for k in ("name", "color", "caller", "muted"))
    if not isinstance(name, str) or not 0 < len(name) <= 32:
        return None
    if not isinstance(color, str) or _COLOR.fullmatch(color) is None:
        return None
    if caller is not None and not is_caller_id(caller):
        return None
    shown = _shown(item.get("display"))
    return TrackState(name, color, caller, shown, muted is True, *read_activity(item))


def _read_waiting(item: object) -> Waiting | None:
    if not isinstance(item, Mapping) or not is_caller_id(item.get("caller")):
        return None
    return Waiting(str(item["caller"]), _shown(item.get("display")))


def _read_banned(item: object) -> Banned | None:
    if not isinstance(item, Mapping) or not is_caller_id(item.get("caller")):
        return None
    ban_s = _number(item.get("ban_s"))
    if ban_s is None or not 0 <= ban_s <= 86_400:
        return None
    return Banned(str(item["caller"]), _shown(item.get("display")), ban_s)


def _read_light(item: object, floors: int, bays: int) -> Light | None:
    if not isinstance(item, list) or len(item) != 4:
        return None
    floor, bay = _int(item[0], 0, floors - 1), _int(item[1], 0, bays - 1)
    color, intensity = item[2], _number(item[3])
    if floor is None or bay is None or intensity is None:
        return None
    if not isinstance(color, str) or _COLOR.fullmatch(color) is None:
        return None
    return Light(floor, bay, color, min(1.0, max(0.0, intensity)))


# --- writers --------------------------------------------------------------------------


def to_data(event: InputEvent | BillboardEvent) -> dict[str, Any]:
    """The ``data`` shape of an event (what `read_public`, `read_command` and
    `read_billboard` read back)."""
    if isinstance(event, Assign | Left | State):
        return event.to_data()
    if isinstance(event, Join):
        who = {"caller": event.caller, "source": event.source, "display": event.display}
        return {"event": "join", **who, "nick": event.nick}
    if isinstance(event, Digit):
        pressed = {"digit": event.digit, "source": event.source}
        return {"event": "digit", "caller": event.caller, **pressed}
    if isinstance(event, Leave):
        return {"event": "leave", "caller": event.caller, "reason": event.reason}
    return {"event": "command", "name": event.name, "args": dict(event.args)}


def seed_data(caller: str, digit: str, display: str | None) -> dict[str, Any]:
    """The seed form as fanned out once its number is a pseudonym: a 2010 page still
    reads ``caller_id`` and ``command``; ``display`` is at most "…12"."""
    return {"caller_id": caller, "command": digit, "display": display}
