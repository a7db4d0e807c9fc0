"""Per-address limits that hold across relays: one token bucket per address and kind
in Redis, for the relays that share a backplane (relay/backplane.py).

Each relay keeps its own buckets (`relay.ratelimit.BucketsByKey`) as today, and asks
them first: a flood from one address is refused there without a word to Redis, so
Redis hears at most the limit's own rate per address from each relay. What the local
bucket lets through is then taken from the address's shared bucket (`TAKE_LUA`: one
round trip, atomic, refilled by Redis's own clock), which every relay draws on: an
address over the limit on one relay is over it on all of them.

Only the limits that let an attacker with ``curl`` make more of something across N
relays are shared: caller sessions minted per address (each one a fresh caller with
a rate of its own) and HTTP publishes per address. A WebSocket frame never waits for
Redis (its per-connection bucket stays local, and the caller's rate is already held
in the publish script), nor does a socket: `connections_per_address` protects each
relay's own descriptors, which another relay's sockets do not use.

When Redis cannot answer, the local bucket's word stands (a relay that lost Redis
limits as one relay would) and the failure is logged once a minute. Addresses are
kept in Redis as a keyed hash only (`address_key`), never as written.
"""

from __future__ import annotations

import base64
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
