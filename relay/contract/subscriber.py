"""A v2 subscriber without I/O: feed it what the relay sends, it returns messages and
keeps where each channel is, so a client that reconnects resumes without loss.

Every Python client of the relay (the billboard's `RelayLink`, the rehearsal crowd's
arrival check, the benchmarks) shares this core and owns only its socket::

    subscriber = V2Subscriber(["dialjam", "dialjam:control"])
    for frame in subscriber.subscribe_frames():      # after every (re)connect
        send(json.dumps(frame))
    for message in subscriber.receive_data(text):    # every text frame received
        ...                                          # Received, Gap, RelayError, …

The relay's side is the README's "v2" section: a ``subscribed`` frame names the
channel's ``seq`` and ``epoch``, then every event comes as
``{"type":"event","id":CH,"seq":N,"ts":MS,"data":{...}}``, several of them at once as
one JSON array. Subscribing again with ``since`` (the last seq seen) and ``epoch``
replays what was missed; what history no longer holds, or another epoch's seqs (the
relay restarted, the channel was freed), comes as a ``gap`` first.

`receive_data` is total: a frame that is not JSON or not an object is an `Unreadable`
message, never an exception, and a frame of a type it does not know is skipped.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

PROTOCOL_VERSION: Final = 2
# `gap` reasons: older than the history, another epoch, or the subscriber fell behind.
GAP_REASONS: Final = frozenset({"history", "epoch", "overflow"})
CODE_MAX: Final = 32  # an error code is a short name; more is the peer's noise


@dataclass(frozen=True, slots=True)
class Received:
    """One event on `channel`: its ``data`` object, for the contract's readers."""

    channel: str
    seq: int | None
    ts: int | None
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Subscribed:
    """The relay took the subscription; the channel stands at `seq` of `epoch`."""

    channel: str
    seq: int
    epoch: str


@dataclass(frozen=True, slots=True)
class Gap:
    """Events `first`…`last` of `channel`'s current epoch are lost (`reason`:
    ``history``, ``epoch`` or ``overflow``); `last` < `first` says none of this epoch
    was (the relay restarted), which `lost` tells apart."""

    channel: str | None
    first: int | None
    last: int | None
    reason: str | None

    @property
    def lost(self) -> bool:
        """False for an empty range: nothing of the current epoch is missing."""
        return not (
            isinstance(self.first, int) and isinstance(self.last, int) and self.last < self.first
        )


@dataclass(frozen=True, slots=True)
class Ack:
    """A publish with ``"ack":true`` was taken as `seq` of `channel`."""

    channel: str | None
    seq: int | None
    epoch: str | None


@dataclass(frozen=True, slots=True)
class Pong:
    """The answer to a ``ping`` frame (a token it carried was accepted)."""


@dataclass(frozen=True, slots=True)
class RelayError:
    """The relay refused something this client sent (the README's table of codes)."""

    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A frame or an item of one that is not a relay message; `why` says what."""

    why: str


Message = Received | Subscribed | Gap | Ack | Pong | RelayError | Unreadable


def subscribe_frame(
    channel: str, since: int | None = None, epoch: str | None = None
) -> dict[str, Any]:
    """A v2 ``subscriber`` frame, resuming after `since` of `epoch` when given."""
    frame: dict[str, Any] = {"type": "subscriber", "id": channel, "v": PROTOCOL_VERSION}
    if since is not None:
        frame["since"] = since
        if epoch is not None:
            frame["epoch"] = epoch
    return frame


def publish_frame(
    channel: str,
    data: Mapping[str, Any],
    *,
    token: str | None = None,
    session: str | None = None,
    ack: bool = False,
) -> dict[str, Any]:
    """A ``publisher`` frame carrying `data`, with a role's `token` or a keypad's caller
    `session` when given, asking for an ``ack`` when `ack`."""
    frame: dict[str, Any] = {"type": "publisher", "id": channel, "data": dict(data)}
    if token is not None:
        frame["token"] = token
    if session is not None:
        frame["session"] = session
    if ack:
        frame["ack"] = True
    return frame


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class V2Subscriber:
    """Subscribes to `channels` and follows them: the last seq seen and the epoch of
    each, which `subscribe_frames` sends again after a reconnect.

    `loads` decodes a frame's text (json.loads, or a faster one such as orjson.loads:
    anything raising ValueError on bad input)."""

    def __init__(
        self, channels: Iterable[str], loads: Callable[[str | bytes], Any] = json.loads
    ) -> None:
        self.channels: tuple[str, ...] = tuple(channels)
        self._loads = loads
        self._position: dict[str, tuple[int, str | None]] = {}

    def subscribe_frames(self) -> list[dict[str, Any]]:
        """The frames to send on a fresh connection: every channel, resumed after the
        last event seen where one was."""
        frames = []
        for channel in self.channels:
            seq, epoch = self._position.get(channel, (None, None))
            frames.append(subscribe_frame(channel, seq, epoch))
        return frames

    def position(self, channel: str) -> tuple[int, str | None] | None:
        """(since, epoch) to resume `channel` with; None before anything was seen."""
        return self._position.get(channel)

    def receive_data(self, frame: str | bytes) -> list[Message]:
        """The messages in one text frame from the relay (an object or an array)."""
        try:
            value = self._loads(frame)
        except ValueError:
            return [Unreadable("relay sent a frame that is not JSON")]
        return self.receive(value)

    def receive(self, value: object) -> list[Message]:
        """The messages in one already decoded frame."""
        out: list[Message] = []
        for item in value if isinstance(value, list) else [value]:
            message = self._read(item)
            if message is not None:
                out.append(message)
        return out

    def _read(self, item: object) -> Message | None:
        if not isinstance(item, dict):
            return Unreadable("relay sent a frame that is not an object")
        kind = item.get("type")
        channel = item.get("id")
        if kind == "event":
            if not isinstance(channel, str):
                return None
            seq, data = _count(item.get("seq")), item.get("data")
            if seq is not None:
                epoch = self._position.get(channel, (0, None))[1]
                self._position[channel] = (seq, epoch)
            if not isinstance(data, dict):
                return None
            return Received(channel, seq, _count(item.get("ts")), data)
        if kind == "subscribed" and isinstance(channel, str):
            epoch, seq = item.get("epoch"), _count(item.get("seq"))
            if not isinstance(epoch, str) or seq is None:
                return Unreadable("relay sent a subscribed frame without seq and epoch")
            last = self._position.get(channel)
            if last is None or last[1] != epoch:
                # A new epoch's seqs start afresh: what it replays follows from here.
                self._position[channel] = (seq, epoch)
            return Subscribed(channel, seq, epoch)
        if kind == "gap":
            reason = item.get("reason")
            return Gap(
                channel if isinstance(channel, str) else None,
                _count(item.get("from")),
                _count(item.get("to")),
                reason if isinstance(reason, str) else None,
            )
        if kind == "error":
            message = item.get("message")
            return RelayError(
                str(item.get("code"))[:CODE_MAX], message if isinstance(message, str) else ""
            )
        if kind == "ack":
            epoch = item.get("epoch")
            return Ack(
                channel if isinstance(channel, str) else None,
                _count(item.get("seq")),
                epoch if isinstance(epoch, str) else None,
            )
        if kind == "pong":
            return Pong()
        return None
