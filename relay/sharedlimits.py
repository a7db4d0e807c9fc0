"""Per-address limits that hold across relays: one token bucket per address and kind
in Redis, for the relays that share a backplane (relay/backplane.py).

Each relay keeps its own buckets (`relay.ratelimit.BucketsByKey`) as today, and asks
them first: a flood from one address is refused there without a word to Redis, so
Redis hears at most the limit's own rate per address from each relay. What the local
bucket lets through is then taken from the address's shared bucket (`TAKE_LUA`: one
round trip, atomic, refilled by Redis's own clock), which every relay draws on: an
address over the limit on one relay is over it on all of them.

Shared so: caller sessions minted per address (each one a fresh caller with a rate of
its own) and HTTP publishes per address. A WebSocket frame never waits for Redis (its
per-connection bucket stays local, and the caller's rate is already held in the
publish script). Sockets per address (`connections_per_address`) are counted, not
rated: `SharedSockets` leases them from Redis in chunks, so a phone's first sockets
never wait for Redis either.

When Redis cannot answer, the local bucket's word stands (a relay that lost Redis
limits as one relay would) and the failure is logged once a minute. Addresses are
kept in Redis as a keyed hash only (`address_key`), never as written.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from typing import Any, Final

from redis.exceptions import NoScriptError, RedisError

from .ratelimit import LogOnce

log = logging.getLogger("relay.sharedlimits")

TAKE_LUA: Final = r"""
-- Take COST tokens from the bucket KEYS[1] (RATE a second, BURST at most), if there.
-- ARGV: rate, burst, cost. Returns 1 (taken) or 0 (refused).
local rate, burst, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local since = math.max(0, now - (tonumber(b[2]) or now))
local tokens = math.min(burst, (tonumber(b[1]) or burst) + since * rate)
local taken = 0
if tokens >= cost then
  tokens = tokens - cost
  taken = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 1)
return taken
"""
TAKE_SHA: Final = hashlib.sha1(TAKE_LUA.encode()).hexdigest()


def address_key(kind: str, address: str, key: bytes) -> str:
    """The Redis key of `address`'s bucket of `kind`: a keyed hash of the address, so
    Redis holds no address as written."""
    digest = hmac.new(key, address.encode(), hashlib.sha256).digest()[:12]
    return f"dialjam:addr:{kind}:{base64.urlsafe_b64encode(digest).decode()}"


class SharedBuckets:
    """Buckets by address that every relay on one Redis shares. `redis`: a
    redis-py asyncio client (the backplane's)."""

    def __init__(self, redis: Any, key: bytes, clock: Callable[[], float] = time.monotonic) -> None:
        self.redis = redis
        self.key = key
        self.clock = clock
        self.asked = 0  # round trips to Redis
        self.refused = 0  # refused by the shared bucket (the local one had room)
        self.unanswered = 0  # Redis could not say: the local bucket's word stood
        self.logged = LogOnce(every_s=60.0)

    async def allow(
        self, kind: str, address: str, rate: float, burst: float, cost: float = 1.0
    ) -> bool:
        """Take `cost` from `address`'s shared bucket of `kind` (`rate` a second, `burst`
        at most): False when every relay together has let it through up to the limit.
        True when Redis cannot answer (the local limit holds then)."""
        if rate <= 0:
            return True
        args = (1, address_key(kind, address, self.key), rate, max(burst, 1.0), cost)
        self.asked += 1
        try:
            try:
                taken = await self.redis.evalsha(TAKE_SHA, *args)
            except NoScriptError:  # a new Redis: load it, once
                taken = await self.redis.eval(TAKE_LUA, *args)
        except (RedisError, OSError) as exc:
            self.unanswered += 1
            self.logged.log(
                log, logging.WARNING, "unanswered", "per-address limits held per relay only: "
                "Redis did not answer (%s: %s)", type(exc).__name__, exc, now=self.clock(),
            )  # fmt: skip
            return True
        if int(taken) != 1:
            self.refused += 1
            return False
        return True

    def health(self) -> dict[str, int]:
        return {"asked": self.asked, "refused": self.refused, "unanswered": self.unanswered}


# --- sockets per address, across relays ---------------------------------------------

LEASE_LUA: Final = r"""
-- This relay (ARGV[1]) asks for ARGV[2] more of an address's sockets (KEYS[1]: a hash of
-- relay → sockets leased), all live relays (KEYS[2]: relay → ms its lease ends) holding
-- at most ARGV[3] together. Fields of relays gone silent are dropped. Returns what this
-- relay holds now.
local key, nodes, node = KEYS[1], KEYS[2], ARGV[1]
local want, limit = tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', nodes, '-inf', now)
local held = redis.call('HGETALL', key)
local used, mine = 0, 0
for i = 1, #held, 2 do
  local n, c = held[i], tonumber(held[i + 1])
  if n == node then
    mine = c
  elseif redis.call('ZSCORE', nodes, n) then
    used = used + c
  else
    redis.call('HDEL', key, n)
  end
end
local grant = math.max(0, math.min(want, limit - used - mine))
if grant > 0 then redis.call('HINCRBY', key, node, grant) end
redis.call('EXPIRE', key, 86400)
return mine + grant
"""
LEASE_SHA: Final = hashlib.sha1(LEASE_LUA.encode()).hexdigest()
NODES: Final = "dialjam:nodes"  # sorted set: relay → ms its leases of sockets end
NODE_TTL_S: Final = 15.0  # a relay silent this long holds no sockets any more
NODE_BEAT_S: Final = 5.0
RELEASE_AFTER_S: Final = 5.0  # an address whose last socket went keeps its lease this long


class SharedSockets:
    """`connections_per_address` for all relays on one Redis together, without asking
    Redis for each socket: each relay counts an address's first `free` sockets alone
    (a phone's one or two never reach Redis) and leases more, `chunk` at a time, from
    the address's count in Redis, which no relay may take past the limit; what it no
    longer needs it gives back. So an address holds at most ``per_address`` sockets
    beyond ``free`` on each relay, whichever relays it spreads them over; a relay that
    dies stops holding its leases after `NODE_TTL_S`. When Redis cannot answer, each
    relay's own count holds, as for `SharedBuckets`."""

    def __init__(
        self,
        redis: Any,
        key: bytes,
        node: str,
        per_address: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.redis = redis
        self.key = key
        self.node = node
        self.limit = per_address
        self.free = min(8, per_address // 16)
        self.chunk = max(1, per_address // 32)
        self.clock = clock
        self.leased: dict[str, int] = {}  # address → sockets leased from Redis
        self.refused = 0
        self.unanswered = 0
        self.logged = LogOnce(every_s=60.0)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._releasing: dict[str, asyncio.TimerHandle] = {}

    async def room(self, address: str, count: int) -> bool:
        """Whether `address` may hold `count` admitted sockets on this relay (the
        newest one included), leasing more from Redis when those held are too few."""
        leased = self.leased.get(address, 0)
        if count <= self.free + leased:
            return True
        want = max(self.chunk, count - self.free - leased)
        args = (2, address_key("sockets", address, self.key), NODES, self.node, want, self.limit)
        try:
            try:
                held = int(await self.redis.evalsha(LEASE_SHA, *args))
            except NoScriptError:
                held = int(await self.redis.eval(LEASE_LUA, *args))
        except (RedisError, OSError) as exc:
            self.unanswered += 1
            self.logged.log(
                log, logging.WARNING, "sockets", "sockets per address held per relay only: "
                "Redis did not answer (%s: %s)", type(exc).__name__, exc, now=self.clock(),
            )  # fmt: skip
            return True
        self.leased[address] = max(self.leased.get(address, 0), held)
        if count <= self.free + self.leased[address]:
            return True
        self.refused += 1
        return False

    def released(self, address: str, count: int) -> None:
        """`address` holds `count` admitted sockets here now: give back what is leased
        beyond a chunk of room (all of it once the last socket has been gone a while)."""
        leased = self.leased.get(address, 0)
        if not leased:
            return
        timer = self._releasing.pop(address, None)
        if timer is not None:
            timer.cancel()
        if count == 0:
            loop = asyncio.get_running_loop()
            self._releasing[address] = loop.call_later(RELEASE_AFTER_S, self._give_back, address, 0)
            return
        keep = max(0, count - self.free) + self.chunk
        if leased - keep >= self.chunk:
            self._give_back(address, keep)

    def _give_back(self, address: str, keep: int) -> None:
        self._releasing.pop(address, None)
        leased = self.leased.get(address, 0)
        if leased <= keep:
            return
        if keep:
            self.leased[address] = keep
        else:
            del self.leased[address]
        key = address_key("sockets", address, self.key)
        self._spawn(self._return(key, leased - keep))

    async def _return(self, key: str, count: int) -> None:
        left = int(await self.redis.hincrby(key, self.node, -count))
        if left <= 0:
            await self.redis.hdel(key, self.node)

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._settled)

    def _settled(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        exc = None if task.cancelled() else task.exception()
        if exc is not None:
            self.logged.log(
                log, logging.WARNING, "give back", "could not give sockets back to Redis "
                "(%s: %s); they return when this relay stops", type(exc).__name__, exc,
                now=self.clock(),
            )  # fmt: skip

    async def beat(self) -> None:
        """Say this relay is alive, every `NODE_BEAT_S`, for the relay's life; and when
        it stops, hand back every lease at once."""
        try:
            while True:
                ends = time.time() * 1000 + NODE_TTL_S * 1000
                with contextlib.suppress(RedisError, OSError):
                    await self.redis.zadd(NODES, {self.node: ends})
                await asyncio.sleep(NODE_BEAT_S)
        finally:
            for timer in self._releasing.values():
                timer.cancel()
            with contextlib.suppress(Exception):
                await self.redis.zrem(NODES, self.node)

    def health(self) -> dict[str, int]:
        return {
            "addresses_leased": len(self.leased),
            "refused": self.refused,
            "unanswered": self.unanswered,
        }
