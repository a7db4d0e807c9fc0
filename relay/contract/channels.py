"""The channels of an installation and their rules (the README's "The relay protocol"
and "Tokens and sessions").

An installation named ``NAME`` plays on ``NAME`` (joins, digits and leaves from the
street), and the billboard and the operator speak on three channels of their own:
``NAME:state`` (the billboard's `assign`, `leave` and `state`), ``NAME:callers`` (the
billboard's word to each keypad) and ``NAME:control`` (the console's commands). Every
id is 1–64 characters of ``[A-Za-z0-9_.:-]``.
"""

from __future__ import annotations

import re
from typing import Final

CHANNEL_PATTERN: Final = "[A-Za-z0-9_.:-]{1,64}"
CHANNEL_ID: Final = re.compile(CHANNEL_PATTERN)
CHANNEL_MAX: Final = 64
CONTROL_SUFFIX: Final = ":control"
STATE_SUFFIX: Final = ":state"
CALLERS_SUFFIX: Final = ":callers"
# The channels an installation name may not itself be: they belong to a name before them.
ROLE_SUFFIXES: Final = (CONTROL_SUFFIX, STATE_SUFFIX, CALLERS_SUFFIX)
DEFAULT_NAME: Final = "dialjam"
NAME_RULE: Final = (
    "must be 1–64 characters of A-Z a-z 0-9 _ . : - and not end in :control, :state or :callers"
)

_valid_seen: set[str] = set()  # ids already checked: a set lookup beats the regex


def valid_channel(channel: object) -> bool:
    """True when `channel` is a string of 1–64 characters of ``[A-Za-z0-9_.:-]``."""
    if not isinstance(channel, str):
        return False
    if channel in _valid_seen:
        return True
    if CHANNEL_ID.fullmatch(channel) is None:
        return False
    if len(_valid_seen) >= 4096:  # bounded: a crowd of names cannot grow it
        _valid_seen.clear()
    _valid_seen.add(channel)
    return True


def valid_installation_name(name: object) -> bool:
    """True when `name` may name an installation: a channel id that is not itself one
    of another name's ``:control``, ``:state`` or ``:callers`` (`NAME_RULE`)."""
    return valid_channel(name) and not str(name).endswith(ROLE_SUFFIXES)


def state_channel(name: str) -> str:
    """Where the billboard publishes `assign`, `leave` and `state` for `name`."""
    return name + STATE_SUFFIX


def control_channel(name: str) -> str:
    """Where the console publishes its commands for `name`."""
    return name + CONTROL_SUFFIX


def callers_channel(name: str) -> str:
    """Where the billboard speaks to each of `name`'s keypads."""
    return name + CALLERS_SUFFIX


def installation_channels(name: str) -> frozenset[str]:
    """The channels an installation named `name` uses: `name` itself and its
    ``:state``, ``:control`` and ``:callers``; a name that a suffix would push past the
    channel grammar is left out."""
    names = (name, state_channel(name), control_channel(name), callers_channel(name))
    return frozenset(n for n in names if valid_channel(n))


def required_role(channel: str) -> str | None:
    """The token role a publisher needs on `channel`: ``operator`` for ``*:control``,
    ``billboard`` for ``*:state`` and ``*:callers``, None for every other channel."""
    if channel.endswith(CONTROL_SUFFIX):
        return "operator"
    if channel.endswith((STATE_SUFFIX, CALLERS_SUFFIX)):
        return "billboard"
    return None
