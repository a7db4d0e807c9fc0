"""Event logs of a night written the way ``--log-events`` writes them, for the render's
tests: a crowd of callers pressing keys at a steady pace, with a little jitter."""

from __future__ import annotations

import random
from pathlib import Path

from billboard.engine import Digit, InputEvent, Join, Leave
from billboard.eventlog import EventLog

KEYS = "1234567890*#"


def crowd_events(
    callers: int, seconds: float, presses_per_s: float = 2.0, *, first: float = 1.0, seed: int = 1
) -> list[tuple[float, InputEvent]]:
    """`callers` join at `first`, each presses about `presses_per_s` keys a second
    until `first + seconds`, then they all leave; (time, event) in time order."""
    rng = random.Random(seed)
    events: list[tuple[float, InputEvent]] = []
    for n in range(callers):
        events.append((first + 0.01 * n, Join(f"c-{n}")))
    end = first + seconds
    for n in range(callers):
        t = first + 0.1 + rng.uniform(0, 1 / presses_per_s)
        while t < end:
            events.append((t, Digit(f"c-{n}", rng.choice(KEYS))))
            t += rng.uniform(0.5, 1.5) / presses_per_s
    events.sort(key=lambda item: item[0])
    events += [(end + 0.01 * n, Leave(f"c-{n}")) for n in range(callers)]
    return events


def write_log(path: Path, events: list[tuple[float, InputEvent]]) -> Path:
    """`events` as a ``--log-events`` file (times since the start)."""
    log = EventLog(path, start=0.0)
    for at, event in events:
        log.write(event, at)
    log.close()
    return path
