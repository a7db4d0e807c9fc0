"""The billboard's door for relay messages: every ``data`` object passes here before
the engine, the screen, the event log or the recording see it.

The seed's ``{"caller_id": NUMBER, "command": DIGIT}`` (or ``ani`` for ``caller_id``)
is a digit; its number becomes a keyed pseudonym here and nowhere is it kept. A
``caller`` that looks like a phone number (a gateway that forgot to pseudonymise) is
treated the same way.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from relay.privacy import masked, pseudonym

from .engine.events import CALLER_ID, Digit, InputEvent, Join, parse_event

log = logging.getLogger("billboard.door")


class Door:
    """Turns relay data into engine events; remembers (boundedly) which pseudonymised
    callers it has announced, so a seed caller's first digit brings a join with "…12"."""

    def __init__(self, key: bytes, remember: int = 10_000) -> None:
        self._key = key
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._remember = remember
        self.refused = 0

    def admit(self, data: Mapping[str, Any]) -> list[InputEvent]:
        """The engine events in one relay ``data`` object ([] if it holds none)."""
        if not isinstance(data, Mapping):
            return self._refuse("not an object")
        number = data.get("caller_id", data.get("ani"))
        if "event" not in data and "command" in data and number is not None:
            return self._seed(number, data.get("command"))
        caller = data.get("caller")
        if isinstance(caller, str) and _looks_like_number(caller):
            fixed = dict(data)
            fixed["caller"] = pseudonym(caller, self._key)
            fixed.setdefault("display", masked(caller))
            data = fixed
        event = parse_event(data)
        if event is None:
            return self._refuse(f"unreadable {str(data.get('event'))[:16]!r} event")
        return [event]

    def _seed(self, number: object, command: object) -> list[InputEvent]:
        if not isinstance(number, str | int) or not isinstance(command, str | int):
            return self._refuse("seed message without a number and a digit")
        number = str(number)
        digit = str(command).strip()
        if len(digit) != 1 or digit not in "0123456789*#":
            return self._refuse("seed message whose command is not one key")
        caller = pseudonym(number, self._key)
        events: list[InputEvent] = []
        if caller not in self._seen:
            self._seen[caller] = None
            if len(self._seen) > self._remember:
                self._seen.popitem(last=False)
            events.append(Join(caller, "seed", masked(number)))
        events.append(Digit(caller, digit, "seed"))
        return events

    def _refuse(self, why: str) -> list[InputEvent]:
        self.refused += 1
        if self.refused <= 5 or self.refused % 1000 == 0:  # never a flood in the log
            log.info("ignored a relay message (%s); %d so far", why, self.refused)
        return []


def _looks_like_number(caller: str) -> bool:
    digits = sum(ch.isdigit() for ch in caller)
    return (digits >= 5 and not CALLER_ID.fullmatch(caller)) or caller.lstrip("+").isdigit()
