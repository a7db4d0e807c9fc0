"""A channel of the relay's fan-out and the subscriptions to it, free of I/O: a named
stream of events with one order (its ``seq``), a bounded history, and who hears what
(every subscriber hears an unaddressed event; an event addressed to one caller is
heard by that caller's subscriptions and those that hear every caller). The fan-out
(`relay.fanout`) decides what to keep and whom to wake."""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Final

from . import protocol

if TYPE_CHECKING:
    from .fanout import Outbox

# What one event of history costs beyond its envelope's bytes: the bytes object's
# header (33), the (seq, time, envelope, addressee) tuple (72), the float (24), the int
# (28) and the deque's slot (8), as sys.getsizeof reports them on 64-bit CPython 3.11
# (an addressee's string is shared with the publisher's event). Counting it keeps the
# byte bounds honest for floods of tiny events too.
EVENT_OVERHEAD: Final = 168


class Subscription:
    """One connection's interest in one channel: its outbox, whether it reads v2
    envelopes or (v1, the seed's form) each event's bare data, and which addressed
    events it hears: those for `caller` (a keypad's), or all of them (`all_callers`)."""

    __slots__ = ("all_callers", "caller", "channel", "outbox", "v2")

    def __init__(
        self,
        channel: Channel,
        outbox: Outbox,
        v2: bool,
        caller: str | None = None,
        all_callers: bool = False,
    ) -> None:
        self.channel = channel
        self.outbox = outbox
        self.v2 = v2
        self.caller = caller
        self.all_callers = all_callers

    def hears(self, to: str | None) -> bool:
        """Whether an event addressed `to` (None: everyone) is for this subscription."""
        return to is None or self.all_callers or to == self.caller


def event_cost(envelope: bytes) -> int:
    """The bytes one event of history is counted for: its envelope and what holds it."""
    return len(envelope) + EVENT_OVERHEAD


class Channel:
    """A named stream of events with a per-channel seq and a bounded history.

    The channel keeps `history_bytes` equal to the `event_cost` of what it holds; the
    fan-out decides what to drop and keeps the total."""

    __slots__ = (
        "by_caller", "epoch", "history", "history_bytes", "name", "name_json", "pinned", "seq",
        "subscriptions", "watchers",
    )  # fmt: skip

    def __init__(self, name: str, epoch: str, pinned: bool = False) -> None:
        self.name = name
        self.name_json = protocol.dumps(name)
        self.epoch = epoch
        self.pinned = pinned
        self.seq = 0
        # (seq, time of publishing, envelope, addressee); seqs are contiguous from
        # history[0].
        self.history: deque[tuple[int, float, bytes, str | None]] = deque()
        self.history_bytes = 0
        self.subscriptions: list[Subscription] = []
        # Who hears an addressed event: the subscriptions of each caller, and those
        # that hear every caller.
        self.by_caller: dict[str, list[Subscription]] = {}
        self.watchers: list[Subscription] = []

    def add(self, sub: Subscription) -> None:
        self.subscriptions.append(sub)
        if sub.all_callers:
            self.watchers.append(sub)
        elif sub.caller is not None:
            self.by_caller.setdefault(sub.caller, []).append(sub)

    def remove(self, sub: Subscription) -> None:
        with contextlib.suppress(ValueError):
            self.subscriptions.remove(sub)
        if sub.all_callers:
            with contextlib.suppress(ValueError):
                self.watchers.remove(sub)
        elif sub.caller is not None:
            subs = self.by_caller.get(sub.caller)
            if subs is not None:
                with contextlib.suppress(ValueError):
                    subs.remove(sub)
                if not subs:
                    del self.by_caller[sub.caller]

    def audience(self, to: str | None) -> Iterable[Subscription]:
        """The subscriptions an event addressed `to` (None: everyone) is queued for."""
        if to is None:
            return self.subscriptions
        return [*self.by_caller.get(to, ()), *self.watchers]

    def first_held(self) -> int:
        """The oldest seq still in history (seq + 1 when history is empty)."""
        return self.history[0][0] if self.history else self.seq + 1

    def keep(self, seq: int, now: float, envelope: bytes, to: str | None = None) -> int:
        """Append an event (addressed `to`) to history; returns its cost."""
        self.history.append((seq, now, envelope, to))
        cost = event_cost(envelope)
        self.history_bytes += cost
        return cost

    def drop_oldest(self) -> int:
        """Drop the oldest event of history; returns the bytes freed."""
        cost = event_cost(self.history.popleft()[2])
        self.history_bytes -= cost
        return cost

    def prune(self, oldest_allowed: float) -> int:
        """Drop history older than `oldest_allowed`; returns the bytes freed."""
        history = self.history
        freed = 0
        while history and history[0][1] < oldest_allowed:
            freed += self.drop_oldest()
        return freed

    def trim_to(self, level: int) -> tuple[int, int]:
        """Drop the oldest events until history holds at most `level` bytes; returns
        (events, bytes) dropped."""
        events = freed = 0
        while self.history_bytes > level and self.history:
            freed += self.drop_oldest()
            events += 1
        return events, freed
