"""Plain counters the fan-out keeps on its hot path, read by /healthz and /metrics at
scrape time (relay/metrics.py turns them into Prometheus metrics), so a publish pays
an integer increment for each and nothing more."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Final


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
