"""Who the operator kicked, and until when: a kicked caller is refused until their ban
runs out, or until the operator undoes the kick (``unban``). Pure: times come in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from relay.contract.scene import BANNED_MAX, Banned

# A kick remembered past this many is forgotten oldest first: a crowd of fake callers
# kicked one by one cannot grow the billboard's memory.
BANS_MAX: Final = 4096


@dataclass(slots=True)
class _Ban:
    until: float
    display: str | None


class Bans:
    """The running bans, oldest kick first."""

    def __init__(self) -> None:
        self._bans: dict[str, _Ban] = {}

    def __len__(self) -> int:
        return len(self._bans)

    def kick(self, caller: str, display: str | None, until: float) -> None:
        """Refuse `caller` until `until`; a second kick starts their ban again."""
        self._bans.pop(caller, None)
        self._bans[caller] = _Ban(until, display)
        while len(self._bans) > BANS_MAX:
            del self._bans[next(iter(self._bans))]

    def lift(self, caller: str) -> bool:
        """Undo a kick: True when `caller` was banned (they may play again at once)."""
        return self._bans.pop(caller, None) is not None

    def left(self, caller: str, now: float) -> float | None:
        """Seconds left in `caller`'s ban at `now`, or None when they are not banned (a
        ban that ran out is forgotten here)."""
        ban = self._bans.get(caller)
        if ban is None:
            return None
        if now >= ban.until:
            del self._bans[caller]
            return None
        return ban.until - now

    def expire(self, now: float) -> None:
        for caller in [c for c, ban in self._bans.items() if now >= ban.until]:
            del self._bans[caller]

    def shown(self, now: float) -> tuple[Banned, ...]:
        """The latest `BANNED_MAX` bans still running at `now`, the latest kick first,
        for the console (each with an undo)."""
        shown: list[Banned] = []
        for caller in reversed(self._bans):
            ban = self._bans[caller]
            if now < ban.until:
                shown.append(Banned(caller, ban.display, ban.until - now))
                if len(shown) == BANNED_MAX:
                    break
        return tuple(shown)
