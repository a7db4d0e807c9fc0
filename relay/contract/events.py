"""The events of DESIGN.md's "Channels and event shapes", and their readers.

Every reader here is total: it takes any JSON value and returns an event or a
`Refused` naming what was wrong; it never raises. A value from the street is data,
never control, so anything this module cannot read is counted and dropped by the
caller, not trusted a little.

In (on the installation's channel ``NAME``): `Join`, `Digit`, `Leave`, and the 2010
seed form ``{"caller_id": NUMBER, "command": KEY}`` (`SeedDigit`). In on
``NAME:control`` only: `Command`. Out, from the billboard (on ``NAME:state``):
``assign``, ``leave`` and ``state``, written by the billboard's engine.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from .privacy import masked

# The keys a phone has (RFC 4733 events 0–15) and those that play (A–D are ignored).
KEYS: Final = frozenset("0123456789*#ABCD")
PLAY_KEYS: Final = frozenset("0123456789*#")

# A caller pseudonym ("c-" and ten consonants from `privacy.pseudonym`); any short token
# of this alphabet is read as a caller id, as long as it holds at most four digits: a
# longer run could be a phone number, which never travels.
CALLER_ID: Final = re.compile(r"[A-Za-z][A-Za-z0-9_.:-]{0,39}")
CALLER_MAX_DIGITS: Final = 4
NICK_MAX: Final = 16
SOURCE_MAX: Final = 16
# Why a caller left: from a gateway or keypad …
PUBLIC_LEAVE_REASONS: Final = frozenset({"hangup", "timeout", "closed"})
# … and from the billboard (`idle`, `turn`, `kicked`, `full`: the line is full).
LEAVE_REASONS: Final = PUBLIC_LEAVE_REASONS | frozenset({"idle", "turn", "kicked", "full"})
COMMANDS: Final = frozenset({"kick", "mute", "tempo", "key", "scale", "panic", "pause"})
KEY_NAME_MAX: Final = 8  # "C#", "Bb", "f♯": the engine decides which it knows
SCALE_NAME_MAX: Final = 32
# The console's tempo range is the engine's (40–240); anything finite is clamped there.
BPM_LIMIT: Final = 1000.0


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


PublicEvent = Join | Digit | Leave
InputEvent = Join | Digit | Leave | Command


# --- small total cleaners -------------------------------------------------------------


def digit_count(text: str) -> int:
    return sum(ch.isdigit() for ch in text)


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
    digits = [ch for ch in display[:64] if ch.isdigit()]
    return "…" + "".join(digits[-2:]) if digits else None


def clean_source(source: object) -> str:
    """Where a caller comes from ("twilio", "web"): a short name of letters, digits,
    - and _, with at most four digits (more could be a phone number); else "web"."""
    if (
        isinstance(source, str)
        and 0 < len(source) <= SOURCE_MAX
        and source.isascii()
        and digit_count(source) <= CALLER_MAX_DIGITS
    ):
        return source if source.replace("-", "").replace("_", "").isalnum() else "web"
    return "web"


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
    """Read one ``command`` from ``NAME:control``; its args are checked for its name
    and returned in one shape: kick{caller}, mute{caller, on}, tempo{bpm}, key{key},
    scale{name}, panic{}, pause{on}."""
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
    if name in ("kick", "mute"):
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
        if not isinstance(scale, str) or not 0 < len(scale) <= SCALE_NAME_MAX:
            return Refused("bad_command", 'scale needs a name such as "minor"')
        return Command(name, {"name": scale})
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


# --- writers --------------------------------------------------------------------------


def to_data(event: InputEvent) -> dict[str, Any]:
    """The ``data`` shape of an event (what `read_public`/`read_command` read back)."""
    if isinstance(event, Join):
        return {
            "event": "join",
            "caller": event.caller,
            "source": event.source,
            "display": event.display,
            "nick": event.nick,
        }
    if isinstance(event, Digit):
        return {
            "event": "digit",
            "caller": event.caller,
            "digit": event.digit,
            "source": event.source,
        }
    if isinstance(event, Leave):
        return {"event": "leave", "caller": event.caller, "reason": event.reason}
    return {"event": "command", "name": event.name, "args": dict(event.args)}


def seed_data(caller: str, digit: str, display: str | None) -> dict[str, Any]:
    """The seed form as fanned out once its number is a pseudonym: a 2010 page still
    reads ``caller_id`` and ``command``; ``display`` is at most "…12"."""
    return {"caller_id": caller, "command": digit, "display": display}
