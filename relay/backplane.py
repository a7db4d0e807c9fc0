"""The Redis backplane: several relay processes share every channel.

Without it a relay's channels are its own (`relay.fanout.FanOut`, in memory). With
``[relay] backplane = "redis://HOST:PORT/DB"`` every publish goes through Redis:

- One Lua script (`PUBLISH_LUA`, atomic) gives the event its channel's next ``seq``
  (``HINCRBY`` on the channel's hash, which also holds its ``epoch``), appends it to
  the channel's capped stream (history: the relay's own bounds in events, bytes and
  age, the stream ID being ``seq-0``), checks the caller's rate in a bucket all relays
  share, and ``PUBLISH``es it on one pub/sub channel. One order per channel whichever
  relay took the event; one round trip per publish (pipelined in batches); Redis
  carries each event once per relay, never once per subscriber.
- Each relay subscribes to that pub/sub channel once and hands every event to its own
  fan-out (`FanOut.apply`): its bounded outboxes, coalescing and copy of the history,
  so a v2 subscriber resumes with ``since``/``epoch`` on any relay from memory.
- An event is acknowledged to its publisher only once Redis has run the script on it;
  when Redis cannot be reached the publisher gets an ``error`` frame
  (``backplane_unavailable``), never silence, and /healthz says ``degraded`` and why.
- The listener is supervised: on any failure it reconnects with `relay.backoff`'s
  waits and first catches up from the streams (every channel's events past the seq it
  holds), so what it missed while away is delivered, in order, before anything newer.

Redis's keys: ``dialjam:ch:NAME:meta`` (hash: seq, epoch, bytes), ``dialjam:ch:NAME:log``
(stream), ``dialjam:channels`` (set of names), ``dialjam:rate:CALLER`` (a caller's
bucket); the pub/sub channel is ``dialjam:events``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Final
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .backoff import backoff_delay
from .channel import EVENT_OVERHEAD
from .fanout import FanOut, Outbox
from .protocol import ProtocolError
from .ratelimit import LogOnce

log = logging.getLogger("relay.backplane")

EVENTS: Final = b"dialjam:events"
CHANNELS: Final = "dialjam:channels"
BATCH: Final = 256  # publishes per pipelined round trip at most
COMMAND_TIMEOUT_S: Final = 3.0
RETRY_FIRST_S: Final = 0.2
RETRY_CAP_S: Final = 5.0
HEALTH_CHECK_S: Final = 2  # the pub/sub connection is pinged when this quiet

PUBLISH_LUA: Final = """
-- KEYS: the channel's meta hash, its stream, the set of channels, the caller's bucket
-- ARGV: name, data, ts_ms, addressee, origin, epoch if new, max events, max bytes,
--       max age ms, pub/sub channel, caller rate (empty: none), burst, event overhead
local meta, stream = KEYS[1], KEYS[2]
if ARGV[11] ~= '' then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
  local rate, burst = tonumber(ARGV[11]), tonumber(ARGV[12])
  local held = redis.call('HMGET', KEYS[4], 'tokens', 'at')
  local tokens = tonumber(held[1]) or burst
  local at = tonumber(held[2]) or now
  tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
  if tokens < 1 then return {-1, ''} end
  redis.call('HSET', KEYS[4], 'tokens', tostring(tokens - 1), 'at', tostring(now))
  redis.call('EXPIRE', KEYS[4], math.ceil(burst / rate) + 1)
end
if redis.call('EXISTS', meta) == 0 then redis.call('DEL', stream) end
local seq = redis.call('HINCRBY', meta, 'seq', 1)
redis.call('HSETNX', meta, 'epoch', ARGV[6])
local epoch = redis.call('HGET', meta, 'epoch')
local cost = string.len(ARGV[2]) + tonumber(ARGV[13])
redis.call('XADD', stream, seq .. '-0', 't', ARGV[3], 'd', ARGV[2], 'a', ARGV[4], 'c', cost)
local bytes = redis.call('HINCRBY', meta, 'bytes', cost)
local n = redis.call('XLEN', stream)
local max_events, max_bytes = tonumber(ARGV[7]), tonumber(ARGV[8])
local oldest = tonumber(ARGV[3]) - tonumber(ARGV[9])
while n > 0 do
  local first = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)[1]
  local f = first[2]
  if n <= max_events and bytes <= max_bytes and tonumber(f[2]) >= oldest then break end
  bytes = redis.call('HINCRBY', meta, 'bytes', -tonumber(f[8]))
  redis.call('XDEL', stream, first[1])
  n = n - 1
end
redis.call('PEXPIRE', stream, tonumber(ARGV[9]) + 60000)
redis.call('SADD', KEYS[3], ARGV[1])
redis.call('PUBLISH', ARGV[10], ARGV[1] .. '\\n' .. epoch .. '\\n' .. seq .. '\\n' ..
  ARGV[3] .. '\\n' .. ARGV[4] .. '\\n' .. ARGV[5] .. '\\n' .. ARGV[2])
return {seq, epoch}
"""


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


class Message:
    """An event as the pub/sub channel carries it (`PUBLISH_LUA`'s last line)."""

    __slots__ = ("data", "epoch", "name", "origin", "seq", "to", "ts_ms")

    def __init__(self, raw: bytes) -> None:
        name, epoch, seq, ts, to, origin, data = raw.split(b"\n", 6)
        self.name = name.decode()
        self.epoch = epoch.decode()
        self.seq = int(seq)
        self.ts_ms = int(ts)
        self.to = to.decode() or None
        self.origin = origin.decode()
        self.data = data


Pending = tuple[str, bytes, str | None, str, str | None, "asyncio.Future[tuple[int, str]]"]


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
    ) -> None:
        self.url = check_url(url)
        self.hub = hub
        self.caller_rate = caller_rate
        self.clock = clock
        self.wall_ms = wall_ms
        self.node = secrets.token_hex(4)
        # Any: redis-py's annotations make every command "Awaitable[T] | T".
        self.redis: Any = aioredis.from_url(  # type: ignore[no-untyped-call]
            url,
            socket_timeout=COMMAND_TIMEOUT_S,
            socket_connect_timeout=COMMAND_TIMEOUT_S,
            health_check_interval=HEALTH_CHECK_S,
        )
        self.script = self.redis.register_script(PUBLISH_LUA)
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
        self.queue.append((name, data_json, to, token, caller, fut))
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

    async def _write(self, batch: list[Pending]) -> None:
        hub = self.hub
        limits = hub.limits
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for name, data, to, origin, caller, _ in batch:
                    rate = f"{self.caller_rate:g}" if caller and self.caller_rate > 0 else ""
                    await self.script(
                        keys=[meta_key(name), log_key(name), CHANNELS, f"dialjam:rate:{caller}"],
                        args=[
                            name,
                            data,
                            self.wall_ms(),
                            to or "",
                            origin,
                            secrets.token_hex(6),
                            limits.history_events,
                            limits.history_bytes,
                            int(limits.history_seconds * 1000),
                            EVENTS,
                            rate,
                            2 * self.caller_rate,
                            EVENT_OVERHEAD,
                        ],
                        client=pipe,
                    )
                results = await pipe.execute(raise_on_error=False)
        except (RedisError, OSError) as exc:
            self.writes_failing = True
            self._failed("cannot publish", exc)
            for *_, origin, _, fut in batch:
                self._refuse(fut, origin)
            return
        self.writes_failing = False
        for (*_, origin, _, fut), result in zip(batch, results, strict=True):
            if isinstance(result, BaseException):
                self._failed("a publish failed", result)
                self._refuse(fut, origin)
            elif int(result[0]) < 0:
                self.origins.pop(origin, None)
                if not fut.done():
                    fut.set_exception(
                        ProtocolError("rate_limited", "this caller sends too fast; event dropped")
                    )
            elif not fut.done():
                fut.set_result((int(result[0]), result[1].decode()))

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

    # -- receiving --

    async def _listen(self) -> None:
        """Subscribe, catch up from the streams, then take events as they come."""
        pubsub = self.redis.pubsub()
        try:
            await pubsub.subscribe(EVENTS)
            # The confirmation: from here on nothing published is missed.
            while await pubsub.get_message(timeout=COMMAND_TIMEOUT_S) is None:
                pass
            self.origins.clear()
            names = {n.decode() for n in await self.redis.smembers(CHANNELS)}
            for name in sorted(names | set(self.hub.channels)):
                await self._catch_up(name)
            self.listening = True
            self.writes_failing = False  # Redis answers again; the next publish will tell
            self.error = None
            self.synced.set()
            self.syncs += 1
            self.logged.forget()
            log.info("backplane %s: listening and caught up", shown(self.url))
            while True:
                msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if msg is not None and msg["type"] == "message":
                    await self._take(Message(msg["data"]))
        finally:
            self.listening = False
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    async def _take(self, msg: Message) -> None:
        hub = self.hub
        ch = hub.channels.get(msg.name)
        if ch is None or ch.epoch != msg.epoch or msg.seq > ch.seq + 1:
            # Something before it is missing here: read it from the stream first.
            await self._catch_up(msg.name, upto=msg.seq - 1)
        origin = self.origins.pop(msg.origin, None) if msg.origin else None
        hub.apply(
            msg.name, msg.epoch, msg.seq, msg.ts_ms, msg.data, self._now(msg.ts_ms), origin, msg.to
        )

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
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        while self.queue:
            *_, origin, _, fut = self.queue.popleft()
            self._refuse(fut, origin)
        await self.redis.aclose()
