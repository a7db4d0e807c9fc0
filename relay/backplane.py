"""The Redis backplane: several relay processes share every channel.

Without it a relay's channels are its own (`relay.fanout.FanOut`, in memory). With
``[relay] backplane = "redis://HOST:PORT/DB"`` every publish goes through Redis:

- One Lua script (`relay.backplane_script.PUBLISH_LUA`, atomic) gives the event its
  channel's next ``seq`` (in the channel's hash, which also holds its ``epoch``),
  appends it to the channel's capped stream (history: the relay's own bounds in
  events, bytes and age per channel and in bytes for all channels, the stream ID
  being ``seq-0``), checks the caller's rate in a bucket all relays share and the
  number of channels against ``max_channels`` (counted in Redis, so a channel made
  through any relay counts on all), and ``PUBLISH``es it on one pub/sub channel. One
  order per channel whichever relay took the event; one round trip per publish
  (pipelined in batches); Redis carries each event once per relay, never once per
  subscriber.
- Each relay subscribes to that pub/sub channel once and hands every event to its own
  fan-out (`FanOut.apply`): its bounded outboxes, coalescing and copy of the history,
  so a v2 subscriber resumes with ``since``/``epoch`` on any relay from memory.
- An event is acknowledged to its publisher only once Redis has run the script on it;
  when Redis cannot be reached the publisher gets an ``error`` frame
  (``backplane_unavailable``), never silence, and /healthz says ``degraded`` and why.
- The listener is supervised: on any failure it reconnects with `relay.backoff`'s
  waits and first catches up from the streams (every channel's events past the seq it
  holds), so what it missed while away is delivered, in order, before anything newer.

Redis's keys: ``dialjam:ch:NAME:meta`` (hash: seq, epoch, bytes, first held seq),
``dialjam:ch:NAME:log`` (stream), ``dialjam:names`` (the channels made by a publish,
by time of their last, the installation's own aside), ``dialjam:sizes`` (bytes of
history by channel) and ``dialjam:total`` (their sum), ``dialjam:rate:CALLER`` (a
caller's bucket, expiring), ``dialjam:keypad:NAME:CALLER``
(the relay a keypad last connected to, expiring with its session, so only that relay
says the caller's leave), ``dialjam:addr:KIND:HASH`` (an address's shared buckets,
relay/sharedlimits.py); the pub/sub channel is ``dialjam:events``. One Redis (a DB
number of its own) per installation; a standalone server, not Redis Cluster (the
script touches keys it is not given).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Final
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError, ResponseError

from .backoff import backoff_delay
from .backplane_script import GRACE_MS, NAMES, PUBLISH_LUA, SIZES, TOTAL
from .channel import EVENT_OVERHEAD
from .fanout import FanOut, Outbox
from .protocol import ProtocolError
from .ratelimit import LogOnce

log = logging.getLogger("relay.backplane")

EVENTS: Final = b"dialjam:events"
BATCH: Final = 1024  # publishes per pipelined round trip at most
COMMAND_TIMEOUT_S: Final = 3.0
RETRY_FIRST_S: Final = 0.2
RETRY_CAP_S: Final = 5.0
HEALTH_CHECK_S: Final = 2  # the pub/sub connection is pinged when this quiet


def meta_key(name: str) -> str:
    return f"dialjam:ch:{name}:meta"


def log_key(name: str) -> str:
    return f"dialjam:ch:{name}:log"


def check_url(url: str) -> str:
    """`url` if it names a Redis server (redis://, rediss:// or unix://), else
    ValueError saying so."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix") or not (parts.hostname or parts.path):
        raise ValueError(f"backplane {url!r} must look like redis://HOST:PORT/DB")
    return url


def shown(url: str) -> str:
    """`url` without its password, for /healthz and the log."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


Event = tuple[int, int, str | None, str, bytes]  # seq, ts ms, addressee, origin, data


def read_batch(raw: bytes) -> tuple[str, str, list[Event]]:
    """(channel, epoch, events) of a batch as the pub/sub channel carries it
    (`PUBLISH_LUA`'s last lines: event data is compact JSON, so holds no tab or
    newline)."""
    name, epoch, *lines = raw.split(b"\n")
    events: list[Event] = []
    for line in lines:
        seq, ts, to, origin, data = line.split(b"\t", 4)
        events.append((int(seq), int(ts), to.decode() or None, origin.decode(), data))
    return name.decode(), epoch.decode(), events


HEADS_KEPT: Final = 4096  # channels whose packed call start is kept


def _bulk(arg: bytes) -> bytes:
    """One argument of a command as RESP writes it (a bulk string)."""
    return b"$%d\r\n%b\r\n" % (len(arg), arg)


# What the script's seq -1 and -2 mean.
REFUSALS: Final[dict[int, Callable[[], ProtocolError]]] = {
    -1: lambda: ProtocolError("rate_limited", "this caller sends too fast; event dropped"),
    -2: lambda: ProtocolError("too_many_channels", "the relays hold too many channels; try later"),
}

# channel, data, addressee, origin's token, caller ("": none), the publisher's future
Pending = tuple[str, bytes, str, str, str, "asyncio.Future[tuple[int, str]]"]


class RedisBackplane:
    """One relay's link to the shared channels: publishes go out through `publish`,
    everyone's events come back into `hub`."""

    def __init__(
        self,
        url: str,
        hub: FanOut,
        caller_rate: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        wall_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        parser_class: type | None = None,
    ) -> None:
        """`parser_class`: redis-py's reply parser (its default: hiredis's when that is
        installed), given only to measure one against another (bench/backplane_cost.py)."""
        self.url = check_url(url)
        self.hub = hub
        self.caller_rate = caller_rate
        self.clock = clock
        self.wall_ms = wall_ms
        self.node = secrets.token_hex(4)
        options: dict[str, Any] = {
            "socket_timeout": COMMAND_TIMEOUT_S,
            "socket_connect_timeout": COMMAND_TIMEOUT_S,
            "health_check_interval": HEALTH_CHECK_S,
            # No retries inside the client (its default waits up to seconds between
            # three): a publisher hears at once that Redis is away, and the listener's
            # reconnecting is `_supervise`'s.
            "retry": Retry(NoBackoff(), 0),
        }
        if parser_class is not None:
            options["parser_class"] = parser_class
        # Any: redis-py's annotations make every command "Awaitable[T] | T".
        self.redis: Any = aioredis.from_url(url, **options)  # type: ignore[no-untyped-call]
        # The writer's own connection, spoken to directly (`_write`): a pooled one is
        # checked for stray data (a poll of the socket) each time it is taken, and
        # redis-py's packing of a command costs more than the rest of a publish.
        # Without a timeout of each step: the whole round trip has one (`_write`), which
        # saves a task and two timers a publish.
        pool = self.redis.connection_pool
        self.conn: Any = pool.connection_class(**{**pool.connection_kwargs, "socket_timeout": None})
        # The pub/sub connection's client, read without a timer a message: a watchdog
        # pings it and ends it when it stays quiet (`_watch`).
        self.listener: Any = aioredis.from_url(  # type: ignore[no-untyped-call]
            url, **{**options, "socket_timeout": None, "health_check_interval": 0}
        )
        self._heads: dict[str, bytes] = {}  # each channel's packed start of the call
        self._epochs = 0  # new epochs are this relay's node and a count
        self._heard = 0.0  # when the pub/sub connection last said anything
        # Called by its SHA1; loaded when Redis says it does not know it (a new Redis).
        # (redis-py's Script object in a pipeline asks SCRIPT EXISTS on every round.)
        self.sha = hashlib.sha1(PUBLISH_LUA.encode()).hexdigest()
        self.queue: deque[Pending] = deque()
        self.kick = asyncio.Event()
        self.origins: dict[str, Outbox] = {}
        self._origin_n = 0
        self.listening = False  # subscribed and caught up
        self.synced = asyncio.Event()
        self.syncs = 0  # times the listener caught up
        self.error: str | None = "not connected yet"
        self.writes_failing = False
        self.reconnects = 0
        self.refused = 0  # publishes answered with backplane_unavailable
        self.caught_up = 0  # events read from the streams, not the pub/sub channel
        self.logged = LogOnce(every_s=60.0)
        self.tasks: list[asyncio.Task[None]] = []
        self._spawned: set[asyncio.Task[Any]] = set()

    # -- health --

    @property
    def ok(self) -> bool:
        return self.listening and not self.writes_failing

    def health(self) -> dict[str, Any]:
        return {
            "url": shown(self.url),
            "ok": self.ok,
            "why": None if self.ok else self.error,
            "reconnects": self.reconnects,
            "refused": self.refused,
            "caught_up": self.caught_up,
            "waiting": len(self.queue),
        }

    def _failed(self, what: str, exc: BaseException) -> None:
        self.error = f"{what}: {type(exc).__name__}: {exc}"
        self.logged.log(log, logging.WARNING, what, "backplane %s", self.error, now=self.clock())

    # -- publishing --

    def publish(
        self,
        name: str,
        data_json: bytes,
        to: str | None = None,
        origin: Outbox | None = None,
        caller: str | None = None,
    ) -> asyncio.Future[tuple[int, str]]:
        """Send an event to every relay: the future gives (seq, epoch) once Redis holds
        it, or fails with `ProtocolError` (backplane_unavailable, rate_limited)."""
        fut: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()
        token = ""
        if origin is not None:
            self._origin_n += 1
            token = f"{self.node}.{self._origin_n}"
            self.origins[token] = origin
        self.queue.append((name, data_json, to or "", token, caller or "", fut))
        self.kick.set()
        return fut

    async def _write_loop(self) -> None:
        """Sends what waits in pipelined batches, in order, and settles each future."""
        queue = self.queue
        while True:
            await self.kick.wait()
            self.kick.clear()
            while queue:
                batch = [queue.popleft() for _ in range(min(len(queue), BATCH))]
                await self._write(batch)

    def _command(self, name: str, items: list[Pending]) -> bytes:
        """The script's call for `items` of channel `name`, packed for the wire (RESP):
        what stays the same for a channel is packed once (`_heads`), and the events go
        as one argument, a line each, so a publish costs a few joins, not redis-py's
        encoding of twenty arguments."""
        head = self._heads.get(name)
        if head is None:
            limits = self.hub.limits
            rate = self.caller_rate
            settings = (
                f"{limits.history_events} {limits.history_bytes} "
                f"{int(limits.history_seconds * 1000)} {EVENTS.decode()} {rate!r} "
                f"{2 * rate!r} {EVENT_OVERHEAD} {limits.max_channels} "
                f"{1 if name in self.hub.pinned else 0} {limits.history_total_bytes}"
            )
            args = ("EVALSHA", self.sha, "5", meta_key(name), log_key(name), NAMES, SIZES, TOTAL,
                    name, settings)  # fmt: skip
            head = b"*13\r\n" + b"".join(_bulk(a.encode()) for a in args)
            if len(self._heads) >= HEADS_KEPT:
                self._heads.clear()
            self._heads[name] = head
        self._epochs += 1
        lines = b"\n".join(
            b"%b\t%b\t%b\t%b"
            % (data, (to or "").encode(), origin.encode(), (caller or "").encode())
            for _, data, to, origin, caller, _ in items
        )
        epoch = f"{self.node}{self._epochs:x}".encode()
        return head + _bulk(epoch) + _bulk(b"%d" % self.wall_ms()) + _bulk(lines)

    async def _write(self, batch: list[Pending], again: bool = True) -> None:
        """One round trip for `batch`: one script call per channel, in order (and the
        script loaded first, then the batch once more, when Redis did not know it)."""
        groups: dict[str, list[Pending]] = {}
        for item in batch:
            groups.setdefault(item[0], []).append(item)
        results: list[bytes | ResponseError] = []
        try:
            packed = b"".join([self._command(name, items) for name, items in groups.items()])
            conn = self.conn
            async with asyncio.timeout(COMMAND_TIMEOUT_S):
                await conn.send_packed_command(packed, check_health=False)
                for _ in groups:
                    try:
                        results.append(await conn.read_response())
                    except ResponseError as exc:  # a reply: the others still follow it
                        results.append(exc)
            if again and any(isinstance(r, NoScriptError) for r in results):
                # Nothing ran (the script is checked before it starts): all again.
                await self.redis.script_load(PUBLISH_LUA)
                await self._write(batch, again=False)
                return
        except (RedisError, OSError) as exc:
            with contextlib.suppress(Exception):
                await self.conn.disconnect()  # a reply may still be on its way: start clean
            self.writes_failing = True
            self._failed("cannot publish", exc)
            for *_, origin, _, fut in batch:
                self._refuse(fut, origin)
            return
        self.writes_failing = False
        for items, result in zip(groups.values(), results, strict=True):
            if isinstance(result, BaseException):
                self._failed("a publish failed", result)
                for *_, origin, _, fut in items:
                    self._refuse(fut, origin)
                continue
            epoch_raw, _, seqs = result.partition(b" ")
            epoch = epoch_raw.decode()
            for (*_, origin, _, fut), seq_raw in zip(items, seqs.split(b","), strict=True):
                if fut.done():
                    continue
                seq = int(seq_raw)
                if seq < 0:
                    self.origins.pop(origin, None)
                    fut.set_exception(REFUSALS[seq]())
                else:
                    fut.set_result((seq, epoch))

    def _refuse(self, fut: asyncio.Future[tuple[int, str]], origin: str) -> None:
        self.refused += 1
        self.origins.pop(origin, None)
        if not fut.done():
            fut.set_exception(
                ProtocolError(
                    "backplane_unavailable",
                    "the relays' shared store (Redis) cannot be reached: event NOT published; "
                    "send it again",
                )
            )

    # -- keypads that move between relays --

    def claim(self, channel: str, caller: str, ttl_s: float) -> None:
        """A keypad of `caller` is connected here now: its leave is this relay's to say
        (a keypad behind a load balancer may come back on another relay)."""
        key = f"dialjam:keypad:{channel}:{caller}"
        self.spawn(self.redis.set(key, self.node, ex=max(1, int(ttl_s))))

    def spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        """Run `work` on its own, held until done; a failure is logged (once a minute)."""
        task = asyncio.get_running_loop().create_task(work)
        self._spawned.add(task)
        task.add_done_callback(self._settled)

    async def holds(self, channel: str, caller: str) -> bool:
        """Whether the last keypad of `caller` connected here (or nowhere that Redis
        knows of, or Redis cannot say): then this relay says its leave."""
        try:
            owner = await self.redis.get(f"dialjam:keypad:{channel}:{caller}")
        except (RedisError, OSError):
            return True
        return owner is None or owner.decode() == self.node

    def _settled(self, task: asyncio.Task[Any]) -> None:
        self._spawned.discard(task)
        exc = None if task.cancelled() else task.exception()
        if exc is not None:
            self._failed("a keypad's note failed", exc)

    # -- receiving --

    async def _listen(self) -> None:
        """Subscribe, catch up from the streams, then take events as they come."""
        pubsub = self.listener.pubsub()
        watch: asyncio.Task[None] | None = None
        try:
            await pubsub.subscribe(EVENTS)
            # The confirmation: from here on nothing published is missed.
            async with asyncio.timeout(COMMAND_TIMEOUT_S):
                while await pubsub.get_message(timeout=COMMAND_TIMEOUT_S) is None:
                    pass
            self.origins.clear()
            keep_ms = int(self.hub.limits.history_seconds * 1000) + GRACE_MS
            alive = await self.redis.zrangebyscore(NAMES, self.wall_ms() - keep_ms, "+inf")
            names = {n.decode() for n in alive}
            for name in sorted(names | set(self.hub.channels)):
                await self._catch_up(name)
            self.listening = True
            self.writes_failing = False  # Redis answers again; the next publish will tell
            self.error = None
            self.synced.set()
            self.syncs += 1
            self.logged.forget()
            log.info("backplane %s: listening and caught up", shown(self.url))
            conn = pubsub.connection
            self._heard = self.clock()
            watch = asyncio.get_running_loop().create_task(self._watch(pubsub))
            read = conn.read_response
            while True:
                reply = await read()
                self._heard = self.clock()
                if isinstance(reply, list) and len(reply) == 3 and reply[0] == b"message":
                    await self._take(reply[2])
        finally:
            self.listening = False
            if watch is not None:
                watch.cancel()
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    async def _watch(self, pubsub: Any) -> None:
        """Ping the pub/sub connection every `HEALTH_CHECK_S`; one that answered nothing
        for longer than that and `COMMAND_TIMEOUT_S` is cut, and the listener's read
        fails (then `_supervise` connects again)."""
        while True:
            await asyncio.sleep(HEALTH_CHECK_S)
            if self.clock() - self._heard > HEALTH_CHECK_S + COMMAND_TIMEOUT_S:
                self._failed("lost the event stream", TimeoutError("Redis stopped answering"))
                await pubsub.connection.disconnect()
                return
            with contextlib.suppress(RedisError, OSError):
                await pubsub.ping()

    async def _take(self, raw: bytes) -> None:
        try:
            name, epoch, events = read_batch(raw)
        except ValueError:  # not ours: something else publishes on our pub/sub channel
            self.logged.log(
                log, logging.WARNING, "unreadable", "backplane: skipped a message that is not "
                "a batch of events on %s", EVENTS.decode(), now=self.clock(),
            )  # fmt: skip
            return
        if not events:
            return
        hub = self.hub
        ch = hub.channels.get(name)
        first = events[0][0]
        if ch is None or ch.epoch != epoch or first > ch.seq + 1:
            # Something before it is missing here: read it from the stream first.
            await self._catch_up(name, upto=first - 1)
        origins = self.origins
        for seq, ts_ms, to, origin_token, data in events:
            origin = origins.pop(origin_token, None) if origin_token else None
            hub.apply(name, epoch, seq, ts_ms, data, self._now(ts_ms), origin, to)

    async def _catch_up(self, name: str, upto: int | None = None) -> None:
        """Apply what the channel's stream holds past the seq held here (up to `upto`)."""
        meta = await self.redis.hgetall(meta_key(name))
        epoch_raw = meta.get(b"epoch")
        if epoch_raw is None:
            # A channel nobody published on yet: agree on its epoch now.
            await self.redis.hsetnx(meta_key(name), "epoch", secrets.token_hex(6))
            epoch_raw = await self.redis.hget(meta_key(name), "epoch")
            if epoch_raw is None:
                return
        epoch = epoch_raw.decode()
        ch = self.hub.channels.get(name)
        start = ch.seq + 1 if ch is not None and ch.epoch == epoch else 1
        last = "+" if upto is None else f"{upto}-0"
        if upto is not None and upto < start:
            entries = []
        else:
            entries = await self.redis.xrange(log_key(name), min=f"{start}-0", max=last)
        for entry_id, fields in entries:
            seq = int(entry_id.split(b"-", 1)[0])
            ts_ms = int(fields[b"t"])
            self.caught_up += 1
            self.hub.apply(
                name, epoch, seq, ts_ms, fields[b"d"], self._now(ts_ms), None,
                fields[b"a"].decode() or None,
            )  # fmt: skip
        seq_held = int(meta.get(b"seq", b"0"))
        if upto is None:
            self.hub.adopt(name, epoch, seq_held)

    def _now(self, ts_ms: int) -> float:
        """The monotonic time an event stamped `ts_ms` was published (its history ages
        from then, not from when this relay read it)."""
        return self.clock() - max(0, self.wall_ms() - ts_ms) / 1000

    # -- running --

    async def _supervise(self, what: str, run: Callable[[], Awaitable[None]]) -> None:
        """Run `run` for the relay's life: after a failure, again after a backoff that
        starts over once a run got as far as catching up."""
        attempt = 0
        while True:
            syncs = self.syncs
            try:
                await run()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis gone, or our bug: either way, try again
                self._failed(what, exc)
            attempt = 0 if self.syncs != syncs else attempt + 1
            self.reconnects += 1
            await asyncio.sleep(backoff_delay(attempt, RETRY_FIRST_S, RETRY_CAP_S, random.random))

    async def start(self, wait_s: float = 5.0) -> None:
        """Run the listener and the writer; wait up to `wait_s` for the first catch-up
        (a relay that cannot reach Redis starts degraded and keeps trying)."""
        loop = asyncio.get_running_loop()
        self.tasks = [
            loop.create_task(self._supervise("lost the event stream", self._listen)),
            loop.create_task(self._supervise("publishing stopped", self._write_loop)),
        ]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.synced.wait(), wait_s)

    async def stop(self) -> None:
        for task in [*self.tasks, *self._spawned]:
            task.cancel()
        for task in [*self.tasks, *self._spawned]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        while self.queue:
            *_, origin, _, fut = self.queue.popleft()
            self._refuse(fut, origin)
        await self.redis.aclose()
        await self.listener.aclose()
        await self.conn.disconnect()
