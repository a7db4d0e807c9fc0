"""Rate limits: a token bucket per peer (`rate` frames a second, bursts up to `burst`),
a sliding window of the refusals that tells a flood from a burst, and `LogOnce`, the
one way a repeated line is kept out of the log."""

from __future__ import annotations

import logging
from collections import OrderedDict, deque
from collections.abc import Hashable


class TokenBucket:
    """Allows `burst` frames at once, refilled at `rate` a second. Time is passed in,
    so the bucket is tested without a clock. A rate of 0 means no limit."""

    __slots__ = ("burst", "last", "rate", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = max(burst, 1.0)
        self.tokens = self.burst
        self.last = now

    def allow(self, now: float, cost: float = 1.0) -> bool:
        """Take `cost` tokens (a frame counted by its size, say) if there are as many."""
        if self.rate <= 0:
            return True
        tokens = self.tokens + (now - self.last) * self.rate
        self.last = now
        if tokens > self.burst:
            tokens = self.burst
        if tokens >= cost:
            self.tokens = tokens - cost
            return True
        self.tokens = tokens
        return False

    def delay(self, now: float, cost: float = 1.0) -> float:
        """Take `cost` tokens, borrowing them when there are too few: the seconds to
        wait before acting on them (0 when they were there). A stream read this slowly
        is held back by TCP instead of being read and refused."""
        if self.rate <= 0:
            return 0.0
        tokens = min(self.burst, self.tokens + (now - self.last) * self.rate) - cost
        self.last = now
        self.tokens = tokens
        return 0.0 if tokens >= 0 else -tokens / self.rate


class BucketsByKey:
    """Buckets for HTTP publishers, by remote address; bounded so that a crowd of
    addresses cannot grow it without end (the least recently seen is forgotten)."""

    def __init__(self, rate: float, burst: float, max_keys: int = 10_000) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def allow(self, key: str, now: float, cost: float = 1.0) -> bool:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst, now)
            if len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket.allow(now, cost)


class RefusalWindow:
    """Refusals of one connection in a sliding window: `refused(now)` is True once more
    than `limit` of them fell within the last `window_s` seconds. A token bucket that
    lets one frame through now and then never sees a flood end, so the refusals
    themselves are counted. Keeps at most `limit` times."""

    __slots__ = ("_times", "limit", "window_s")

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self._times: deque[float] = deque(maxlen=limit)

    def refused(self, now: float) -> bool:
        times = self._times
        full = len(times) == self.limit
        oldest = times[0] if full else now
        times.append(now)  # drops the oldest when full
        return full and now - oldest < self.window_s


class LogOnce:
    """Whether a line may go to the log: once per `key` (a reason, a reason and an
    address…), again only after `every_s` seconds (never, by default), so that a peer
    repeating a mistake costs one line and a flood cannot fill the disk. With `burst`,
    lines of all keys together are also held to `burst` at once and one a second
    after that, so a crowd of addresses cannot fill it either. It remembers at most
    `max_keys` keys (the least recently logged are forgotten, and may log again).

    `log` writes the line, or the same line at DEBUG when it is held back, so a debug
    run still sees every occurrence. Time is passed in, as for `TokenBucket`;
    `suppressed` counts the lines held back."""

    __slots__ = ("_bucket", "_last", "burst", "every_s", "max_keys", "suppressed")

    def __init__(self, every_s: float = float("inf"), burst: int = 0, max_keys: int = 4096) -> None:
        self.every_s = every_s
        self.burst = burst
        self.max_keys = max_keys
        self.suppressed = 0
        self._last: OrderedDict[Hashable, float] = OrderedDict()
        self._bucket: TokenBucket | None = None

    def allow(self, key: Hashable, now: float = 0.0) -> bool:
        """True, and `key` is remembered as logged at `now`, when its line may go out."""
        last = self._last.get(key)
        if last is not None and now - last < self.every_s:
            self.suppressed += 1
            return False
        if self.burst > 0:
            if self._bucket is None:
                self._bucket = TokenBucket(1.0, self.burst, now)
            if not self._bucket.allow(now):
                self.suppressed += 1
                return False
        self._last[key] = now
        self._last.move_to_end(key)
        if len(self._last) > self.max_keys:
            self._last.popitem(last=False)
        return True

    def log(
        self,
        logger: logging.Logger,
        level: int,
        key: Hashable,
        message: str,
        *args: object,
        now: float = 0.0,
    ) -> bool:
        """`logger.log(level, message, *args)` if `key` may log at `now`, else the same
        at DEBUG; returns whether it went out at `level`."""
        if self.allow(key, now):
            logger.log(level, message, *args)
            return True
        logger.debug(message, *args)
        return False

    def forget(self) -> None:
        """Every key may log again (e.g. connection failures, once a connection worked)."""
        self._last.clear()
