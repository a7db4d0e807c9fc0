"""Channels: fan-out, per-subscriber outboxes and bounded history.

Nothing here knows aiohttp or any gateway: a subscriber writes to a `Sink` (the
`asyncio.WriteTransport` interface), and every frame it writes is encoded once per
event (`protocol.encode_envelope`) and shared by all subscribers.

Fan-out never awaits a socket. A publish appends the event to each subscriber's
bounded outbox and marks it dirty; once per event-loop iteration the hub flushes every
dirty outbox with a single write. A v2 subscriber whose outbox holds several events
gets them as one JSON array frame, so coalescing grows with load and costs nothing
when the socket is idle (the flush runs in the very next loop iteration). When the
kernel stops taking bytes, the subscriber turns busy and its own writer task waits
for the transport to drain; the oldest queued events are dropped past the bound and a
v2 subscriber is told the range in a ``gap``; one that stays overflowed is closed.

History is bounded four ways: events and age per channel, bytes per channel, and bytes
for all channels together (see `Hub._keep` and `Hub._shed`). Dropping history never
touches an outbox: an event still queued for a subscriber is its own reference there
and is still delivered. A subscriber resuming with ``since`` from before what is held
gets a ``gap`` with reason ``history``.

Channels are made by the first publish or subscribe that names them, when the caller
allows it (``create=True``: a token holder); the installation's own channels are
*pinned*: made with the hub, never freed, and not counted against ``max_channels``, so
a crowd of new channels can never squat them out.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Final, Protocol

from . import protocol

log = logging.getLogger("relay.channels")

# Bytes the kernel has not yet taken from a subscriber's transport before we stop
# writing and let the events wait (and coalesce) in its outbox.
HIGH_WATER: Final = 64 * 1024
LOW_WATER: Final = 16 * 1024
DRAIN_POLL_S: Final = 0.005
# Under heavy fan-out (this many subscribers waiting in one flush), writing to each
# one every loop iteration costs a syscall per subscriber per event: the kernel time
# alone filled a core at 200 subscribers × 1,000 events/s. Such a flush is held until
# BIG_FLUSH_GAP_S after the previous big one, so events pile up and go out coalesced;
# a flush to fewer subscribers (the usual case) is never held.
BIG_FLUSH: Final = 32
BIG_FLUSH_GAP_S: Final = 0.002
# What one event of history costs beyond its envelope's bytes: the bytes object's
# header (33), the (seq, time, envelope) tuple (64), the float (24), the int (28) and
# the deque's slot (8), as sys.getsizeof reports them on 64-bit CPython 3.11. Counting
# it keeps the byte bounds honest for floods of tiny events too.
EVENT_OVERHEAD: Final = 160
# When all history passes `history_total_bytes`, it is cut to this fraction of it, so
# the scan over channels (`Hub._shed`) runs once per many publishes, not on each one.
SHED_TO: Final = 15 / 16
SHED_LOG_EVERY_S: Final = 60.0


class Sink(Protocol):
    """Where a subscriber's frames go: the part of `asyncio.WriteTransport` we use."""

    def write(self, data: bytes | bytearray | memoryview, /) -> None: ...
    def get_write_buffer_size(self) -> int: ...
    def is_closing(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class HubLimits:
    queue: int = 2048  # events waiting per subscriber before the oldest are dropped
    history_events: int = 1000
    history_seconds: float = 600.0
    slow_close_s: float = 5.0  # overflowed this long without catching up → closed
    max_channels: int = 10_000  # pinned channels come on top of these
    history_bytes: int = 1 << 20  # per channel, counted by `event_cost`
    history_total_bytes: int = 64 << 20  # all channels' history together


class LatencyHistogram:
    """A cheap histogram (no locks, no labels) for the fan-out hot path."""

    BOUNDS: Final = (
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
        1.0, 2.5,
    )  # fmt: skip

    def __init__(self) -> None:
        self.counts = [0] * (len(self.BOUNDS) + 1)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(self.BOUNDS, seconds)] += 1
        self.total += seconds

    def cumulative(self) -> list[tuple[str, int]]:
        out: list[tuple[str, int]] = []
        running = 0
        for bound, count in zip((*self.BOUNDS, float("inf")), self.counts, strict=True):
            running += count
            out.append(("+Inf" if bound == float("inf") else repr(bound), running))
        return out


@dataclass(slots=True)
class Stats:
    """Plain counters, read by /healthz and /metrics at scrape time."""

    published: int = 0
    delivered: int = 0
    frames_out: int = 0
    bytes_out: int = 0
    drops: int = 0
    slow_closed: int = 0
    # Events dropped from history by the byte bounds (the count and age bounds are the
    # expected life of history and are not counted).
    history_dropped_channel: int = 0  # a channel passed `history_bytes`
    history_dropped_total: int = 0  # all history passed `history_total_bytes`
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)


class Subscription:
    """One subscriber's interest in one channel."""

    __slots__ = ("channel", "subscriber", "v2")

    def __init__(self, channel: Channel, subscriber: Subscriber, v2: bool) -> None:
        self.channel = channel
        self.subscriber = subscriber
        self.v2 = v2


def event_cost(envelope: bytes) -> int:
    """The bytes one event of history is counted for: its envelope and what holds it."""
    return len(envelope) + EVENT_OVERHEAD


class Channel:
    """A named stream of events with a per-channel seq and a bounded history.

    The channel keeps `history_bytes` equal to the `event_cost` of what it holds; the
    hub decides what to drop and keeps the total."""

    __slots__ = (
        "epoch", "history", "history_bytes", "name", "name_json", "pinned", "seq",
        "subscriptions",
    )  # fmt: skip

    def __init__(self, name: str, epoch: str, pinned: bool = False) -> None:
        self.name = name
        self.name_json = protocol.dumps(name)
        self.epoch = epoch
        self.pinned = pinned
        self.seq = 0
        # (seq, monotonic time, envelope); seqs are contiguous from history[0].
        self.history: deque[tuple[int, float, bytes]] = deque()
        self.history_bytes = 0
        self.subscriptions: list[Subscription] = []

    def first_held(self) -> int:
        """The oldest seq still in history (seq + 1 when history is empty)."""
        return self.history[0][0] if self.history else self.seq + 1

    def keep(self, seq: int, now: float, envelope: bytes) -> int:
        """Append an event to history; returns its cost."""
        self.history.append((seq, now, envelope))
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


# An event waiting in an outbox: (subscription, seq, payload, monotonic enqueue time).
Item = tuple[Subscription, int, bytes, float]


class Subscriber:
    """A connection's outbox: bounded, drained by the hub's flush and its own writer."""

    def __init__(
        self,
        hub: Hub,
        sink: Sink,
        on_slow: Callable[[], None],
        name: str = "",
    ) -> None:
        self.hub = hub
        self.sink = sink
        self.name = name
        self.on_slow = on_slow
        self.items: deque[Item] = deque()
        self.controls: list[bytes] = []
        self.subscriptions: dict[str, Subscription] = {}
        self.dropped: dict[Subscription, list[int]] = {}  # v2 only: [first, last]
        self.overflow_since: float | None = None
        self.owner: object = None  # the adapter's connection, for its own bookkeeping
        self.dirty = False
        self.busy = False
        self.closed = False
        self._wake = asyncio.Event()

    # -- what the connection and the hub put in --

    def send_control(self, frame: bytes) -> None:
        """Queue a reply (subscribed, ack, error, pong): never dropped, sent first."""
        if self.closed:
            return
        self.controls.append(frame)
        self._mark()

    def enqueue(self, sub: Subscription, seq: int, payload: bytes, now: float) -> None:
        items = self.items
        items.append((sub, seq, payload, now))
        if len(items) > self.hub.limits.queue:
            self._drop_oldest(now)
        if not self.dirty:
            self._mark()

    def _mark(self) -> None:
        self.dirty = True
        self.hub.mark_dirty(self)

    def _drop_oldest(self, now: float) -> None:
        sub, seq, _, _ = self.items.popleft()
        self.hub.stats.drops += 1
        if self.overflow_since is None:
            self.overflow_since = now
            log.warning("subscriber %s overflowed; dropping its oldest events", self.name)
        if sub.v2:
            span = self.dropped.get(sub)
            if span is None:
                self.dropped[sub] = [seq, seq]
            else:
                span[1] = seq

    # -- writing --

    def flush(self, now: float) -> None:
        """Write everything pending in one transport write, unless the transport is
        backed up (then the writer task takes over)."""
        if self.closed or self.busy:
            return
        sink = self.sink
        if sink.is_closing():
            self.items.clear()
            self.controls.clear()
            return
        if sink.get_write_buffer_size() > HIGH_WATER:
            self.busy = True
            self._wake.set()
            return
        self._write_pending(now)
        if sink.get_write_buffer_size() > HIGH_WATER:
            self.busy = True
            self._wake.set()

    def _write_pending(self, now: float) -> None:
        frames: list[bytes] = []
        stats = self.hub.stats
        if self.controls:
            frames.extend(protocol.ws_text_frame(c) for c in self.controls)
            self.controls.clear()
        items = self.items
        batch: list[bytes] = []
        if self.dropped:
            for sub, (first, last) in self.dropped.items():
                batch.append(protocol.encode_gap(sub.channel.name, first, last, "overflow"))
            self.dropped.clear()
        if items:
            stats.latency.observe(now - items[0][3])
            stats.delivered += len(items)
            for sub, _seq, payload, _t in items:
                if sub.v2:
                    batch.append(payload)
                else:
                    # v1 (seed) subscribers get one frame per event, as in 2010.
                    if batch:
                        frames.append(protocol.ws_text_frame(protocol.coalesce(batch)))
                        batch = []
                    frames.append(protocol.ws_text_frame(payload))
            items.clear()
            self.overflow_since = None
        if batch:
            frames.append(protocol.ws_text_frame(protocol.coalesce(batch)))
        if frames:
            data = frames[0] if len(frames) == 1 else b"".join(frames)
            stats.frames_out += len(frames)
            stats.bytes_out += len(data)
            self.sink.write(data)

    async def run_writer(self) -> None:
        """The subscriber's own writer: takes over while its transport is backed up, so
        the publisher and every other subscriber go on."""
        sink = self.sink
        clock = self.hub.clock
        while not self.closed:
            await self._wake.wait()
            self._wake.clear()
            while self.busy and not self.closed:
                if sink.is_closing():
                    self.busy = False
                    break
                if sink.get_write_buffer_size() > LOW_WATER:
                    since = self.overflow_since
                    if since is not None and clock() - since > self.hub.limits.slow_close_s:
                        self.hub.stats.slow_closed += 1
                        log.warning("subscriber %s stayed overflowed; closing it", self.name)
                        self.busy = False
                        self.on_slow()
                        return
                    await asyncio.sleep(DRAIN_POLL_S)
                    continue
                self._write_pending(clock())
                if sink.get_write_buffer_size() <= HIGH_WATER and not self.items:
                    self.busy = False

    def close(self) -> None:
        self.closed = True
        self.items.clear()
        self.controls.clear()
        self._wake.set()


class Hub:
    """All channels of one relay process."""

    def __init__(
        self,
        limits: HubLimits | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        boot: str | None = None,
        pinned: Iterable[str] = (),
    ) -> None:
        """`pinned`: the installation's channels, made now and held for the hub's life
        (never freed by `sweep`, not counted against `max_channels`)."""
        self.limits = limits or HubLimits()
        self.clock = clock
        self.wall_ms = wall_ms
        # Names this relay's history: every channel's epoch starts with it, so a
        # subscriber's `since` from before a restart (or a freed channel) is detected.
        self.boot = boot or secrets.token_hex(4)
        self._epochs = 0
        self.channels: dict[str, Channel] = {}
        self.pinned = frozenset(pinned)
        # The `event_cost` of every channel's history together.
        self.history_bytes = 0
        self.subscribers: set[Subscriber] = set()
        self.stats = Stats()
        self._dirty: list[Subscriber] = []
        self._flush_scheduled = False
        self._last_big_flush = -1.0
        self._last_shed_log = -SHED_LOG_EVERY_S
        for name in sorted(self.pinned):
            self._make(name, pinned=True)

    # -- channels --

    def _make(self, name: str, pinned: bool = False) -> Channel:
        self._epochs += 1
        ch = self.channels[name] = Channel(name, f"{self.boot}-{self._epochs}", pinned)
        return ch

    def channel(self, name: str, create: bool = True) -> Channel:
        """The channel `name`; made when missing if `create` (else ``unknown_channel``),
        within `max_channels` (else ``too_many_channels``)."""
        ch = self.channels.get(name)
        if ch is not None:
            return ch
        if not create:
            raise protocol.ProtocolError(
                "unknown_channel",
                f"there is no channel {name!r}: use the installation's channel or one a "
                "token holder opened (opening a new channel needs a token)",
            )
        # Pinned channels always exist, so the others are all the rest.
        if len(self.channels) - len(self.pinned) >= self.limits.max_channels:
            raise protocol.ProtocolError(
                "too_many_channels", "the relay holds too many channels; try later"
            )
        return self._make(name)

    def publish(
        self,
        name: str,
        data: dict[str, Any],
        origin: Subscriber | None = None,
        create: bool = True,
    ) -> Channel:
        """Give `data` the channel's next seq, keep it in history and queue it for
        every subscriber. The origin's own v1 subscription gets no echo (2010 rule).
        With `create` false, a channel that does not exist raises ``unknown_channel``."""
        ch = self.channel(name, create)
        now = self.clock()
        seq = ch.seq = ch.seq + 1
        data_json = protocol.dumps(data)
        envelope = protocol.encode_envelope(ch.name_json, seq, self.wall_ms(), data_json)
        self._keep(ch, seq, now, envelope)
        self.stats.published += 1
        for sub in ch.subscriptions:
            if sub.v2:
                sub.subscriber.enqueue(sub, seq, envelope, now)
            elif sub.subscriber is not origin:
                sub.subscriber.enqueue(sub, seq, data_json, now)
        return ch

    def _keep(self, ch: Channel, seq: int, now: float, envelope: bytes) -> None:
        """Put an event in `ch`'s history within the count and byte bounds."""
        limits = self.limits
        added = ch.keep(seq, now, envelope)
        freed = 0
        if len(ch.history) > limits.history_events:
            freed += ch.drop_oldest()
        if ch.history_bytes > limits.history_bytes:
            events, trimmed = ch.trim_to(limits.history_bytes)
            self.stats.history_dropped_channel += events
            freed += trimmed
        self.history_bytes += added - freed
        if self.history_bytes > limits.history_total_bytes:
            self._shed()

    def _shed(self) -> None:
        """Cut all history to `SHED_TO` of the total bound, from the channels that hold
        the most bytes: each of them is trimmed (oldest events first) down to one common
        level, and a channel holding less than that level loses nothing.

        Largest-first rather than globally oldest: a flood makes its own events the
        newest, so dropping the globally oldest would empty every quiet channel (the
        last commands on ``:control``, the state a console resumes from) to make room
        for the flood. Trimming from the top makes the channels holding the bytes pay
        for them, whoever fills them; pinned channels share the same rule."""
        need = self.history_bytes - int(self.limits.history_total_bytes * SHED_TO)
        held = sorted(
            (ch for ch in self.channels.values() if ch.history_bytes),
            key=lambda ch: ch.history_bytes,
            reverse=True,
        )
        # Trimming the k largest to `level` frees (their bytes - k × level): find the
        # smallest k for which a level no lower than the next channel's bytes frees
        # enough. k = len(held) always does, with the next channel's bytes taken as 0.
        prefix = 0
        level = 0
        count = len(held)
        for k, ch in enumerate(held, 1):
            prefix += ch.history_bytes
            below = held[k].history_bytes if k < len(held) else 0
            if prefix - k * below >= need:
                level, count = (prefix - need) // k, k
                break
        dropped = freed = 0
        for ch in held[:count]:
            events, trimmed = ch.trim_to(level)
            dropped += events
            freed += trimmed
        self.history_bytes -= freed
        self.stats.history_dropped_total += dropped
        now = self.clock()
        if now - self._last_shed_log >= SHED_LOG_EVERY_S:  # a flood sheds many times a second
            self._last_shed_log = now
            log.warning(
                "history passed %d bytes in all; dropped the oldest %d events of the %d "
                "channels holding the most (each now at most %d bytes)",
                self.limits.history_total_bytes,
                dropped,
                count,
                level,
            )

    def _prune(self, ch: Channel, now: float) -> None:
        self.history_bytes -= ch.prune(now - self.limits.history_seconds)

    def subscribe(
        self,
        subscriber: Subscriber,
        name: str,
        v2: bool,
        since: int | None = None,
        epoch: str | None = None,
        create: bool = True,
    ) -> Channel:
        """Subscribe, replaying history after `since` first: no loss, no duplicates
        (nothing awaits between the replay and joining the live fan-out). With `create`
        false, a channel that does not exist raises ``unknown_channel``."""
        ch = self.channel(name, create)
        old = subscriber.subscriptions.get(name)
        if old is not None:
            self._remove(old)
        sub = Subscription(ch, subscriber, v2)
        subscriber.subscriptions[name] = sub
        if v2:
            subscriber.send_control(
                protocol.dumps({"type": "subscribed", "id": name, "seq": ch.seq, "epoch": ch.epoch})
            )
            if since is not None:
                self._replay(subscriber, sub, ch, since, epoch)
        ch.subscriptions.append(sub)
        return ch

    def _replay(
        self, subscriber: Subscriber, sub: Subscription, ch: Channel, since: int, epoch: str | None
    ) -> None:
        now = self.clock()
        self._prune(ch, now)
        first = ch.first_held()
        if epoch is not None and epoch != ch.epoch:
            # Another epoch's seqs mean nothing here: say what this epoch lost, then
            # replay everything it still holds.
            subscriber.send_control(protocol.encode_gap(ch.name, 1, first - 1, "epoch"))
            start = first
        elif since > ch.seq:
            subscriber.send_control(protocol.encode_gap(ch.name, 1, first - 1, "epoch"))
            start = first
        elif since + 1 < first:
            subscriber.send_control(protocol.encode_gap(ch.name, since + 1, first - 1, "history"))
            start = first
        else:
            start = since + 1
        for seq, _t, envelope in islice(ch.history, start - first, None):
            subscriber.enqueue(sub, seq, envelope, now)

    def unsubscribe(self, subscriber: Subscriber, name: str) -> bool:
        sub = subscriber.subscriptions.pop(name, None)
        if sub is None:
            return False
        self._remove(sub)
        return True

    def _remove(self, sub: Subscription) -> None:
        with contextlib.suppress(ValueError):
            sub.channel.subscriptions.remove(sub)
        sub.subscriber.dropped.pop(sub, None)

    # -- subscribers --

    def attach(self, sink: Sink, on_slow: Callable[[], None], name: str = "") -> Subscriber:
        subscriber = Subscriber(self, sink, on_slow, name)
        self.subscribers.add(subscriber)
        return subscriber

    def detach(self, subscriber: Subscriber) -> None:
        """Leave every channel at once (the 2010 relay leaked closed sockets)."""
        for sub in subscriber.subscriptions.values():
            self._remove(sub)
        subscriber.subscriptions.clear()
        subscriber.close()
        self.subscribers.discard(subscriber)

    def mark_dirty(self, subscriber: Subscriber) -> None:
        self._dirty.append(subscriber)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        """Write every dirty outbox; runs once per loop iteration that published (a
        big flush at most once per BIG_FLUSH_GAP_S)."""
        if len(self._dirty) >= BIG_FLUSH:
            now = self.clock()
            wait = self._last_big_flush + BIG_FLUSH_GAP_S - now
            if wait > 0:
                asyncio.get_running_loop().call_later(wait, self.flush)
                return
            self._last_big_flush = now
        self.flush_now()

    def flush_now(self) -> None:
        """Write every dirty outbox at once."""
        self._flush_scheduled = False
        dirty, self._dirty = self._dirty, []
        now = self.clock()
        for subscriber in dirty:
            subscriber.dirty = False
            try:
                subscriber.flush(now)
            except Exception:  # our bug: keep the others going, show the traceback
                log.exception("flush failed for subscriber %s", subscriber.name)

    # -- housekeeping --

    def sweep(self) -> int:
        """Expire history and free channels nobody holds (never a pinned one); returns
        channels freed."""
        now = self.clock()
        freed: list[str] = []
        for name, ch in self.channels.items():
            self._prune(ch, now)
            if not ch.subscriptions and not ch.history and not ch.pinned:
                freed.append(name)
        for name in freed:
            del self.channels[name]
        return len(freed)

    def subscription_count(self) -> int:
        return sum(len(ch.subscriptions) for ch in self.channels.values())

    def queued(self) -> Iterable[int]:
        return (len(s.items) for s in self.subscribers)
