"""The arrival check's scoring: what each caller sent against what the subscriber saw
(`ArrivalTally`), paired press by press (`match_presses`) into the crowd's report."""

from __future__ import annotations

import asyncio
import math
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from .plan import CallerPlan, CrowdOptions
from .report import CrowdReport

# -- matching what was seen against what was sent (pure) --------------------------------


@dataclass(frozen=True)
class Match:
    sent: int
    seen: int
    lost: int
    duplicated: int
    out_of_order: int
    latencies: tuple[float, ...]  # seconds, one per press seen


def match_presses(sent: Sequence[tuple[str, float]], seen: Sequence[tuple[str, float]]) -> Match:
    """Pair one caller's presses (key, time sent) with the digits a subscriber saw
    (key, time seen), in order.

    A digit is paired with the first unpaired press of the same key at or after the
    last pair and not sent after it was seen; failing that, with an earlier unpaired
    one (out of order); failing that, it is a duplicate. Presses never paired are
    lost. Keys repeat, so this is the likeliest story, not proof; a relay that keeps
    order and loses nothing always gets a perfect score."""
    paired = [False] * len(sent)
    latencies: list[float] = []
    duplicated = out_of_order = 0
    cursor = 0
    for key, when in seen:
        hit = next(
            (
                j
                for j in range(cursor, len(sent))
                if not paired[j] and sent[j][0] == key and sent[j][1] <= when
            ),
            None,
        )
        if hit is not None:
            cursor = hit + 1
        else:
            hit = next(
                (j for j in range(cursor) if not paired[j] and sent[j][0] == key),
                None,
            )
            if hit is None:
                duplicated += 1
                continue
            out_of_order += 1
        paired[hit] = True
        latencies.append(max(0.0, when - sent[hit][1]))
    return Match(
        sent=len(sent),
        seen=len(seen),
        lost=paired.count(False),
        duplicated=duplicated,
        out_of_order=out_of_order,
        latencies=tuple(latencies),
    )


def percentile(sorted_values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile of already sorted values (None when there are none)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100.0 * len(sorted_values)))
    return sorted_values[rank - 1]


# -- the tally: what was sent and what was seen -----------------------------------------


@dataclass
class CallerLog:
    index: int
    sent: list[tuple[str, float]] = field(default_factory=list)
    seen: list[tuple[str, float]] = field(default_factory=list)
    joins: int = 0
    leaves: int = 0
    ended: bool = False  # hung up (a leave is due)


class ArrivalTally:
    """The crowd's books: presses sent per caller, events the subscriber saw, errors.

    For ARI, `joins_to_claim` collects joins of callers the crowd does not know yet
    (from `source`), so a serialised call start can claim the one its call caused."""

    def __init__(self, claim_source: str | None = None) -> None:
        self.by_caller: dict[str, CallerLog] = {}
        self.errors: Counter[str] = Counter()
        self.failed: dict[int, str] = {}
        self.claim_source = claim_source
        self.joins_to_claim: deque[tuple[str, float]] = deque()
        self.seen_events = 0
        self.changed = asyncio.Event()

    def add_caller(self, caller: str, index: int) -> CallerLog:
        log_ = self.by_caller.get(caller)
        if log_ is None:
            log_ = self.by_caller[caller] = CallerLog(index)
        return log_

    def sent(self, caller: str, key: str, when: float) -> None:
        self.by_caller[caller].sent.append((key, when))

    def fail(self, index: int, kind: str) -> None:
        self.failed[index] = kind
        self.errors[kind] += 1

    def error(self, kind: str, n: int = 1) -> None:
        self.errors[kind] += n

    def seen(self, data: Any, when: float) -> None:
        """One event's `data` as the subscriber received it."""
        if not isinstance(data, dict):
            return
        self.seen_events += 1
        caller = data.get("caller")
        event = data.get("event")
        log_ = self.by_caller.get(caller) if isinstance(caller, str) else None
        if log_ is None:
            if event == "join" and self.claim_source and data.get("source") == self.claim_source:
                self.joins_to_claim.append((cast(str, caller), when))
                self.changed.set()
            return
        if event == "digit":
            digit = data.get("digit")
            if isinstance(digit, str):
                log_.seen.append((digit, when))
        elif event == "join":
            log_.joins += 1
        elif event == "leave":
            log_.leaves += 1
        self.changed.set()

    def settled(self) -> bool:
        """Everything the callers sent has been seen (or can no longer be)."""
        return all(
            len(c.seen) >= len(c.sent) and c.joins > 0 and (c.leaves > 0 or not c.ended)
            for c in self.by_caller.values()
            if c.index not in self.failed
        )

    def counts(self) -> tuple[int, int]:
        """(presses sent, digits seen) so far, for the progress line."""
        logs = self.by_caller.values()
        return sum(len(c.sent) for c in logs), sum(len(c.seen) for c in logs)

    def report(self, options: CrowdOptions, seed: int, plans: Sequence[CallerPlan]) -> CrowdReport:
        r = CrowdReport(
            via=options.via,
            relay=options.relay,
            channel=options.channel,
            seed=seed,
            checked=options.check,
            callers=len(plans),
            callers_failed=len(self.failed),
            presses_planned=sum(len(p.presses) for p in plans),
        )
        latencies: list[float] = []
        for c in self.by_caller.values():
            m = match_presses(c.sent, c.seen)
            r.presses_sent += m.sent
            if c.index in self.failed:
                continue  # its presses cannot be judged: the call broke
            r.joins_seen += c.joins > 0
            r.leaves_seen += c.leaves > 0
            r.presses_seen += m.seen
            r.lost += m.lost
            r.duplicated += m.duplicated
            r.out_of_order += m.out_of_order
            latencies += m.latencies
        latencies.sort()
        to_ms = [v * 1000 for v in latencies]
        r.latency_p50_ms = percentile(to_ms, 50)
        r.latency_p99_ms = percentile(to_ms, 99)
        r.latency_max_ms = to_ms[-1] if to_ms else None
        r.errors = dict(sorted(self.errors.items()))
        return r
