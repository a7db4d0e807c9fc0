"""RFC 3261's timers (§17, Table 4) and a heap of deadlines on an injected clock.

The user agent never reads a clock: every call passes `now`, and the adapter sleeps
until `Timers.next_deadline()`. A timer is a callback that checks, when it fires,
whether it still matters (a 2xx retransmission after the ACK came does nothing), so
nothing is ever cancelled.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

T1: Final = 0.5  # RTT estimate
T2: Final = 4.0  # the longest retransmit interval of non-INVITE requests and responses
T4: Final = 5.0  # the longest a message stays in the network
TIMEOUT: Final = 64 * T1  # timers B, F, H, J: 32 s


@dataclass(frozen=True, slots=True)
class Send:
    """Send `data` to `to` (host, port) over `transport` ("UDP"; "TCP": on the
    connection with that address, opened if there is none)."""

    data: bytes
    to: tuple[str, int]
    transport: str = "UDP"


@dataclass(frozen=True, slots=True)
class Started:
    """A call was answered: its caller joins (`caller` is a pseudonym already)."""

    key: str
    caller: str
    display: str | None
    rtp_port: int


@dataclass(frozen=True, slots=True)
class Pressed:
    key: str
    caller: str
    digit: str


@dataclass(frozen=True, slots=True)
class Ended:
    """A call is over (`started`: its caller had joined and now leaves with `reason`);
    its RTP port goes back to the pool."""

    key: str
    caller: str
    started: bool
    reason: str
    rtp_port: int


Action = Send | Started | Pressed | Ended
Fire = Callable[[float], list[Action]]


@dataclass
class Timers:
    _heap: list[tuple[float, int, Fire]] = field(default_factory=list)
    _order: itertools.count[int] = field(default_factory=itertools.count)

    def at(self, when: float, fire: Fire) -> None:
        heapq.heappush(self._heap, (when, next(self._order), fire))

    def next_deadline(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def due(self, now: float) -> list[Action]:
        """Fire every timer due by `now`, in order."""
        actions: list[Action] = []
        while self._heap and self._heap[0][0] <= now:
            _, _, fire = heapq.heappop(self._heap)
            actions.extend(fire(now))
        return actions

    def __len__(self) -> int:
        return len(self._heap)


def retransmit(
    timers: Timers,
    now: float,
    send: Send,
    pending: Callable[[], bool],
    *,
    cap: float,
    give_up: Fire,
    reliable: bool,
) -> None:
    """Send again at T1, 2·T1, 4·T1… (at most `cap` apart) while `pending()` holds;
    after 64·T1 call `give_up` if it still does (timers A/B, E/F, G/H and the 2xx's of
    §13.3.1.4). On a reliable transport nothing is sent again, the deadline stays."""
    deadline = now + TIMEOUT

    def again(interval: float) -> Fire:
        def fire(at: float) -> list[Action]:
            if not pending() or at >= deadline:
                return []
            timers.at(at + min(2 * interval, cap), again(min(2 * interval, cap)))
            return [send]

        return fire

    if not reliable:
        timers.at(now + T1, again(T1))
    timers.at(deadline, lambda at: give_up(at) if pending() else [])
