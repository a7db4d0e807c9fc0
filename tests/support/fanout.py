"""The fan-out core driven by hand, as its tests drive it: no event loop, socket or
clock; time is `Rig.now`, and a round of writes is taken as the adapter
(relay/connections.py) takes it."""

from __future__ import annotations

from typing import Any

import orjson

from relay.fanout import FanOut, Limits, Outbox


def decode(data: bytes) -> list[Any]:
    """Split a block of unmasked server text frames back into their JSON payloads."""
    frames: list[Any] = []
    while data:
        assert data[0] == 0x81  # FIN + text
        n, start = data[1], 2
        if n == 126:
            n, start = int.from_bytes(data[2:4], "big"), 4
        elif n == 127:
            n, start = int.from_bytes(data[2:10], "big"), 10
        frames.append(orjson.loads(data[start : start + n]))
        data = data[start + n :]
    return frames


class Rig:
    """A fan-out, its clock, and the adapter's part played by hand."""

    def __init__(self, pinned: frozenset[str] = frozenset(), **limits: Any) -> None:
        self.now = 1000.0
        self.wakes = 0
        self.fanout = FanOut(Limits(**limits), wake=self._wake, boot="boot", pinned=pinned)

    def _wake(self) -> None:
        self.wakes += 1

    def open(self) -> Outbox:
        return self.fanout.open("test")

    def publish(
        self, name: str, data: dict[str, Any], origin: Outbox | None = None, create: bool = True
    ) -> Any:
        return self.fanout.publish(name, data, self.now, 42, origin, create)

    def subscribe(
        self,
        outbox: Outbox,
        name: str,
        v2: bool,
        since: int | None = None,
        epoch: str | None = None,
        create: bool = True,
    ) -> Any:
        return self.fanout.subscribe(outbox, name, v2, self.now, since, epoch, create)

    def sweep(self) -> int:
        return self.fanout.sweep(self.now)

    def round(self) -> dict[Outbox, list[Any]]:
        """One round of writes: what each dirty outbox would be sent."""
        return {o: decode(o.data_to_send(self.now)) for o in self.fanout.take_dirty()}
