"""Rate limits: a token bucket per peer (`rate` frames a second, bursts up to `burst`),
and a sliding window of the refusals that tells a flood from a burst."""

from __future__ import annotations

from collections import OrderedDict, deque


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
