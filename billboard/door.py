"""The billboard's door for relay messages: every ``data`` object passes here before
the engine, the screen, the event log or the recording see it.

The installation's channel carries joins, digits and leaves, read by the contract's
total reader (`relay.contract.events.read_public`): anything else is counted and
dropped, and a command there is refused (commands come only from ``NAME:control``,
`admit_command`). The seed's ``{"caller_id": NUMBER, "command": KEY}`` is a digit; a
relay pseudonymises the number before fan-out, and a number that still arrives here
(an older relay, a gateway that forgot) becomes a keyed pseudonym at this door.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, OrderedDict
from typing import Any

from relay.contract.events import (
    Command,
    Digit,
    InputEvent,
    Join,
    Leave,
    Refused,
    SeedDigit,
    clean_display,
    is_caller_id,
    read_command,
    read_public,
)
from relay.contract.privacy import masked, pseudonym
from relay.ratelimit import LogOnce

log = logging.getLogger("billboard.door")


class Door:
    """Turns relay data into engine events; remembers (boundedly) which seed callers it
    has announced, so a seed caller's first digit brings a join with "…12"."""

    def __init__(self, key: bytes, remember: int = 10_000) -> None:
        self._key = key
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._remember = remember
        self.refused = 0
        self.refused_by_code: Counter[str] = Counter()
        self._log = LogOnce(every_s=60.0)

    def admit(self, data: object) -> list[InputEvent]:
        """The engine events in one ``data`` object of the installation's channel ([]
        if it holds none). Never raises."""
        event = read_public(data, self._pseudonym)
        if isinstance(event, Refused):
            return self._refuse(event)
        if isinstance(event, SeedDigit):
            shown = data.get("display") if isinstance(data, dict) else None
            return self._seed(event, shown)
        return [event]

    def _pseudonym(self, number: str) -> str:
        return pseudonym(number, self._key)

    def admit_command(self, data: object) -> list[InputEvent]:
        """An operator's command from ``NAME:control`` ([] if it is not one)."""
        command = read_command(data)
        if isinstance(command, Refused):
            return self._refuse(command)
        return [command]

    def _seed(self, seed: SeedDigit, shown: Any) -> list[InputEvent]:
        if is_caller_id(seed.number):  # already a pseudonym (the relay's door made it)
            caller, display = seed.number, clean_display(shown)
        else:
            caller, display = pseudonym(seed.number, self._key), masked(seed.number)
        events: list[InputEvent] = []
        if caller not in self._seen:
            self._seen[caller] = None
            if len(self._seen) > self._remember:
                self._seen.popitem(last=False)
            events.append(Join(caller, "seed", display))
        events.append(Digit(caller, seed.digit, "seed"))
        return events

    def _refuse(self, why: Refused) -> list[InputEvent]:
        self.refused += 1
        self.refused_by_code[why.code] += 1
        self._log.log(  # once a minute per reason: never a flood in the log
            log,
            logging.INFO,
            why.code,
            "ignored a relay message (%s: %s); %d so far",
            why.code,
            why.message,
            self.refused,
            now=time.monotonic(),
        )
        return []


__all__ = ["Command", "Digit", "Door", "Join", "Leave"]
