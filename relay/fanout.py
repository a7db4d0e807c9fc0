"""The relay's fan-out, free of I/O: events and acks in, per-connection writes out.

Nothing here knows a socket, an event loop or a clock. The adapter (`relay.connections`)
feeds it what happened and when (every call that needs the time takes ``now``, in
seconds of a monotonic clock, and a publish its wall-clock ``ts_ms``), and asks it what
to write; the pure framing of those writes is `relay.protocol`'s.

- A publish gives the event the channel's next ``seq``, keeps it in history, and appends
  it to the `Outbox` of every subscribed connection: its envelope (v2) or bare data (v1)
  is encoded once and shared. Nothing is written inside a publish.
- An outbox that got something turns *dirty*; the fan-out calls its ``wake`` once when
  the first outbox of a round turns dirty, and the adapter then takes the dirty ones
  (`FanOut.take_dirty`) and writes each one's `Outbox.data_to_send` in one socket write.
  A v2 connection whose outbox holds several events gets them as one JSON array frame,
  so coalescing grows with load and costs nothing when the socket is idle.
- Under heavy fan-out a round is held briefly (`FanOut.hold`) so events pile up and go
  out coalesced.
- An outbox is bounded: past `Limits.queue` its oldest events are dropped and a v2
  connection is told the range in a ``gap``; one that stays overflowed for
  `Limits.slow_close_s` is `Outbox.stuck` and the adapter closes it.

History is bounded four ways: events and age per channel, bytes per channel, and bytes
for all channels together (see `FanOut._keep` and `FanOut._shed`). Dropping history
never touches an outbox: an event still queued for a connection is its own reference
there and is still delivered. A connection resuming with ``since`` from before what is
held gets a ``gap`` with reason ``history``.

Channels are made by the first publish or subscribe that names them, when the caller
allows it (``create=True``: a token holder); the installation's own channels are
*pinned*: made with the fan-out, never freed, and not counted against ``max_channels``,
so a crowd of new channels can never squat them out.

An event may be *addressed* to one caller (the billboard's news on ``NAME:callers``,
relay/contract/callers.py): it keeps the channel's one order (its seq and history)
but is queued only for the subscriptions that hear that caller (a keypad whose caller
session is theirs) or every caller (`Subscription.all_callers`: a token holder). An
unaddressed event (the digest) reaches every subscriber, anonymous ones included. A
subscriber of such a channel therefore sees seqs skip: the others' news, never lost.

The seam for a backplane shared by several relays: a publish is `FanOut.append` (one
order per channel: the seq, the epoch, the history) followed by `FanOut.deliver` (this
process's subscribers). The in-memory backplane is this class's own channels; the
shared one (`relay.backplane`, Redis) takes over the sequencing and hands each event to
every process through `FanOut.apply`, which keeps it in this process's copy of the
history (so `subscribe` replays from here) and delivers it.
"""

from __future__ import annotations

import logging
import secrets
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import islice
from typing import Any, Final

from . import protocol
from .channel import Channel, Subscription
from .counters import Stats

log = logging.getLogger("relay.fanout")

# Under heavy fan-out (this many outboxes waiting in one round), writing to each one
# every loop iteration costs a syscall per connection per event: the kernel time alone
# filled a core at 200 subscribers × 1,000 events/s. Such a round is held until
# BIG_FLUSH_GAP_S after the previous big one, so events pile up and go out coalesced; a
# round for fewer outboxes (the usual case) is never held.
BIG_FLUSH: Final = 32
BIG_FLUSH_GAP_S: Final = 0.002
# When all history passes `history_total_bytes`, it is cut to this fraction of it, so
# the scan over channels (`FanOut._shed`) runs once per many publishes, not on each one.
SHED_TO: Final = 15 / 16
SHED_LOG_EVERY_S: Final = 60.0


@dataclass(frozen=True, slots=True)
class Limits:
    queue: int = 2048  # events waiting per outbox before the oldest are dropped
    history_events: int = 1000
    history_seconds: float = 600.0
    slow_close_s: float = 5.0  # overflowed this long without catching up → closed
    max_channels: int = 10_000  # pinned channels come on top of these
    history_bytes: int = 1 << 20  # per channel, counted by `event_cost`
    history_total_bytes: int = 64 << 20  # all channels' history together


# An event waiting in an outbox: (subscription, seq, payload, time it was queued).
Item = tuple[Subscription, int, bytes, float]


class Outbox:
    """One connection's outbox: its replies and the events queued for it, bounded.

    What goes in: `send_control` (replies: never dropped, sent first) and, from the
    fan-out, `enqueue`. What comes out: `data_to_send`, the WebSocket frames of all
    that is pending as one block of bytes. `owner` is the adapter's connection."""

    __slots__ = (
        "closed", "controls", "dirty", "dropped", "fanout", "items", "name", "overflow_since",
        "owner", "subscriptions",
    )  # fmt: skip

    def __init__(self, fanout: FanOut, name: str = "", owner: Any = None) -> None:
        self.fanout = fanout
        self.name = name
        # Any: the fan-out never looks at it, and the adapter's round of writes reads it
        # once per outbox without a cast() call.
        self.owner = owner
        self.items: deque[Item] = deque()
        self.controls: list[bytes] = []
        self.subscriptions: dict[str, Subscription] = {}
        self.dropped: dict[Subscription, list[int]] = {}  # v2 only: [first, last]
        self.overflow_since: float | None = None
        self.dirty = False
        self.closed = False

    # -- what the connection and the fan-out put in --

    def send_control(self, frame: bytes) -> None:
        """Queue a reply (subscribed, ack, error, pong): never dropped, sent first."""
        if self.closed:
            return
        self.controls.append(frame)
        self._mark()

    def enqueue(self, sub: Subscription, seq: int, payload: bytes, now: float) -> None:
        items = self.items
        items.append((sub, seq, payload, now))
        if len(items) > self.fanout.limits.queue:
            self._drop_oldest(now)
        if not self.dirty:
            self._mark()

    def _mark(self) -> None:
        if not self.dirty:
            self.dirty = True
            self.fanout.mark_dirty(self)

    def _drop_oldest(self, now: float) -> None:
        sub, seq, _, _ = self.items.popleft()
        self.fanout.stats.drops += 1
        if self.overflow_since is None:
            self.overflow_since = now
            log.warning("subscriber %s overflowed; dropping its oldest events", self.name)
        if sub.v2:
            span = self.dropped.get(sub)
            if span is None:
                self.dropped[sub] = [seq, seq]
            else:
                span[1] = seq

    # -- what comes out --

    def pending(self) -> bool:
        """Whether anything waits to be written."""
        return bool(self.controls or self.items or self.dropped)

    def stuck(self, now: float) -> bool:
        """Overflowed for longer than `Limits.slow_close_s` without catching up: the
        adapter closes such a connection (1013) and counts it (`Stats.slow_closed`)."""
        since = self.overflow_since
        return since is not None and now - since > self.fanout.limits.slow_close_s

    def data_to_send(self, now: float) -> bytes:
        """Everything pending as WebSocket frames, in one block (empty when nothing
        waits): the replies first, then a ``gap`` for what overflow dropped, then the
        events, a v2 connection's coalesced into one array frame, a v1 (seed)
        connection's one frame per event, as in 2010."""
        frames: list[bytes] = []
        stats = self.fanout.stats
        text_frame = protocol.ws_text_frame
        if self.controls:
            frames.extend(text_frame(c) for c in self.controls)
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
                    if batch:
                        frames.append(text_frame(protocol.coalesce(batch)))
                        batch = []
                    frames.append(text_frame(payload))
            items.clear()
            self.overflow_since = None
        if batch:
            frames.append(text_frame(protocol.coalesce(batch)))
        if not frames:
            return b""
        data = frames[0] if len(frames) == 1 else b"".join(frames)
        stats.frames_out += len(frames)
        stats.bytes_out += len(data)
        return data

    def discard(self) -> None:
        """Forget what is pending: the connection can take no more (it is closing)."""
        self.items.clear()
        self.controls.clear()

    def close(self) -> None:
        self.closed = True
        self.items.clear()
        self.controls.clear()


def _no_wake() -> None:
    return None


class FanOut:
    """All channels of one relay process and the outboxes of its connections."""

    def __init__(
        self,
        limits: Limits | None = None,
        *,
        wake: Callable[[], None] = _no_wake,
        boot: str | None = None,
        pinned: Iterable[str] = (),
    ) -> None:
        """`wake`: called when the first outbox of a round turns dirty, so the adapter
        runs a round of writes soon (once per loop iteration, say). `pinned`: the
        installation's channels, made now and held for the fan-out's life (never freed
        by `sweep`, not counted against `max_channels`)."""
        self.limits = limits or Limits()
        self.wake = wake
        # Names this relay's history: every channel's epoch starts with it, so a
        # connection's `since` from before a restart (or a freed channel) is detected.
        self.boot = boot or secrets.token_hex(4)
        self._epochs = 0
        self.channels: dict[str, Channel] = {}
        self.pinned = frozenset(pinned)
        # The `event_cost` of every channel's history together.
        self.history_bytes = 0
        self.outboxes: set[Outbox] = set()
        self.stats = Stats()
        self._dirty: list[Outbox] = []
        self._woken = False
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
        now: float,
        ts_ms: int,
        origin: Outbox | None = None,
        create: bool = True,
        to: str | None = None,
    ) -> Channel:
        """Give `data` the channel's next seq, keep it in history and queue it for
        every subscriber that hears it (`append`, then `deliver`): all of them, or with
        `to` only those of that caller. The origin's own v1 subscription gets no echo
        (2010 rule). With `create` false, a channel that does not exist raises
        ``unknown_channel``."""
        ch = self.channel(name, create)
        data_json = protocol.dumps(data)
        seq, envelope = self.append(ch, data_json, now, ts_ms, to)
        self.deliver(ch, seq, envelope, data_json, now, origin, to)
        return ch

    def append(
        self, ch: Channel, data_json: bytes, now: float, ts_ms: int, to: str | None = None
    ) -> tuple[int, bytes]:
        """Sequence an event on `ch` and keep it in history; returns (seq, envelope)."""
        seq = ch.seq = ch.seq + 1
        envelope = protocol.encode_envelope(ch.name_json, seq, ts_ms, data_json)
        self._keep(ch, seq, now, envelope, to)
        self.stats.published += 1
        return seq, envelope

    def deliver(
        self,
        ch: Channel,
        seq: int,
        envelope: bytes,
        data_json: bytes,
        now: float,
        origin: Outbox | None = None,
        to: str | None = None,
    ) -> None:
        """Queue a sequenced event for every subscriber of `ch` in this process that
        hears it (`Channel.audience`)."""
        for sub in ch.audience(to):
            if sub.v2:
                sub.outbox.enqueue(sub, seq, envelope, now)
            elif sub.outbox is not origin:
                sub.outbox.enqueue(sub, seq, data_json, now)

    def apply(
        self,
        name: str,
        epoch: str,
        seq: int,
        ts_ms: int,
        data_json: bytes,
        now: float,
        origin: Outbox | None = None,
        to: str | None = None,
    ) -> Channel | None:
        """Take an event a shared backplane sequenced (`relay.backplane`): keep it and
        deliver it here, as `publish` does with a seq of its own. Returns its channel,
        or None for an event this process already holds (seq not past the channel's).

        Another `epoch` than the channel's means the backplane's history of it began
        again: what is held here is forgotten and the channel takes that epoch. A seq
        that skips some (cut from the backplane's history before this process read
        them) empties the history held here, so what is held stays contiguous and a
        resume from before it gets its ``gap``."""
        ch = self.channels.get(name) or self._make(name)
        if epoch != ch.epoch:
            self._new_epoch(ch, epoch, seq - 1)
        if seq <= ch.seq:
            return None
        if seq != ch.seq + 1:
            self._forget(ch)
        ch.seq = seq
        envelope = protocol.encode_envelope(ch.name_json, seq, ts_ms, data_json)
        self._keep(ch, seq, now, envelope, to)
        self.stats.published += 1
        self.deliver(ch, seq, envelope, data_json, now, origin, to)
        return ch

    def adopt(self, name: str, epoch: str, seq: int) -> Channel:
        """The backplane says channel `name` stands at `epoch` and `seq`, and has
        handed over (`apply`) every event it still holds: a channel behind that, or of
        another epoch, takes them, forgetting what it held if the epoch changed."""
        ch = self.channels.get(name) or self._make(name)
        if epoch != ch.epoch:
            self._new_epoch(ch, epoch, seq)
        elif seq > ch.seq:
            self._forget(ch)
            ch.seq = seq
        return ch

    def _new_epoch(self, ch: Channel, epoch: str, seq: int) -> None:
        """The channel's history began again (`epoch`, standing at `seq`): what is held
        is forgotten, and its v2 subscribers are told as a new subscription is, so they
        follow the new seqs and resume in the new epoch."""
        ch.epoch = epoch
        ch.seq = seq
        self._forget(ch)
        frame = protocol.dumps({"type": "subscribed", "id": ch.name, "seq": seq, "epoch": epoch})
        for sub in ch.subscriptions:
            if sub.v2:
                sub.outbox.send_control(frame)

    def _forget(self, ch: Channel) -> None:
        self.history_bytes -= ch.history_bytes
        ch.history.clear()
        ch.history_bytes = 0

    def _keep(
        self, ch: Channel, seq: int, now: float, envelope: bytes, to: str | None = None
    ) -> None:
        """Put an event in `ch`'s history within the count and byte bounds."""
        limits = self.limits
        added = ch.keep(seq, now, envelope, to)
        freed = 0
        if len(ch.history) > limits.history_events:
            freed += ch.drop_oldest()
        if ch.history_bytes > limits.history_bytes:
            events, trimmed = ch.trim_to(limits.history_bytes)
            self.stats.history_dropped_channel += events
            freed += trimmed
        self.history_bytes += added - freed
        if self.history_bytes > limits.history_total_bytes:
            self._shed(now)

    def _shed(self, now: float) -> None:
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
        outbox: Outbox,
        name: str,
        v2: bool,
        now: float,
        since: int | None = None,
        epoch: str | None = None,
        create: bool = True,
        caller: str | None = None,
        all_callers: bool = False,
    ) -> Channel:
        """Subscribe, replaying history after `since` first: no loss, no duplicates
        (nothing happens between the replay and joining the live fan-out); addressed
        events reach it when they are for `caller`, or for anyone with `all_callers`.
        With `create` false, a channel that does not exist raises ``unknown_channel``."""
        ch = self.channel(name, create)
        old = outbox.subscriptions.get(name)
        if old is not None:
            self._remove(old)
        sub = Subscription(ch, outbox, v2, caller, all_callers)
        outbox.subscriptions[name] = sub
        if v2:
            outbox.send_control(
                protocol.dumps({"type": "subscribed", "id": name, "seq": ch.seq, "epoch": ch.epoch})
            )
            if since is not None:
                self._replay(outbox, sub, ch, since, epoch, now)
        ch.add(sub)
        return ch

    def _replay(
        self,
        outbox: Outbox,
        sub: Subscription,
        ch: Channel,
        since: int,
        epoch: str | None,
        now: float,
    ) -> None:
        self._prune(ch, now)
        first = ch.first_held()
        if epoch is not None and epoch != ch.epoch:
            # Another epoch's seqs mean nothing here: say what this epoch lost, then
            # replay everything it still holds.
            outbox.send_control(protocol.encode_gap(ch.name, 1, first - 1, "epoch"))
            start = first
        elif since > ch.seq:
            outbox.send_control(protocol.encode_gap(ch.name, 1, first - 1, "epoch"))
            start = first
        elif since + 1 < first:
            outbox.send_control(protocol.encode_gap(ch.name, since + 1, first - 1, "history"))
            start = first
        else:
            start = since + 1
        for seq, _t, envelope, to in islice(ch.history, start - first, None):
            if sub.hears(to):
                outbox.enqueue(sub, seq, envelope, now)

    def unsubscribe(self, outbox: Outbox, name: str) -> bool:
        sub = outbox.subscriptions.pop(name, None)
        if sub is None:
            return False
        self._remove(sub)
        return True

    def _remove(self, sub: Subscription) -> None:
        sub.channel.remove(sub)
        sub.outbox.dropped.pop(sub, None)

    # -- outboxes --

    def open(self, name: str = "", owner: Any = None) -> Outbox:
        """A new connection's outbox; `owner` is the adapter's connection."""
        outbox = Outbox(self, name, owner)
        self.outboxes.add(outbox)
        return outbox

    def close(self, outbox: Outbox) -> None:
        """Leave every channel at once (the 2010 relay leaked closed sockets)."""
        for sub in outbox.subscriptions.values():
            self._remove(sub)
        outbox.subscriptions.clear()
        outbox.close()
        self.outboxes.discard(outbox)

    def mark_dirty(self, outbox: Outbox) -> None:
        self._dirty.append(outbox)
        if not self._woken:
            self._woken = True
            self.wake()

    def hold(self, now: float) -> float:
        """Seconds to wait before the next round of writes: zero, except for a big
        round (`BIG_FLUSH` outboxes or more) within `BIG_FLUSH_GAP_S` of the last one."""
        if len(self._dirty) < BIG_FLUSH:
            return 0.0
        wait = self._last_big_flush + BIG_FLUSH_GAP_S - now
        if wait > 0:
            return wait
        self._last_big_flush = now
        return 0.0

    def take_dirty(self) -> list[Outbox]:
        """The outboxes that got something since the last round, each once; the next
        one to turn dirty wakes the adapter again."""
        self._woken = False
        dirty, self._dirty = self._dirty, []
        for outbox in dirty:
            outbox.dirty = False
        return dirty

    # -- housekeeping --

    def sweep(self, now: float) -> int:
        """Expire history and free channels nobody holds (never a pinned one); returns
        channels freed."""
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
        return (len(o.items) for o in self.outboxes)
