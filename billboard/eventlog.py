"""`--log-events FILE.jsonl` and `--replay FILE.jsonl`: the session's input events
(already pseudonymised at the door) with their time since the start, one JSON object a
line, so a replay gives the engine the same events at the same times."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import orjson

from .engine.events import InputEvent, read_input, to_data

log = logging.getLogger("billboard.eventlog")


class EventLog:
    """Appends events as they reach the engine; flushed line by line, so a crash loses
    nothing already played."""

    def __init__(self, path: Path, start: float) -> None:
        self.path = path
        self.start = start
        self._file: IO[bytes] | None = path.open("ab")
        self.written = 0  # events written

    def write(self, event: InputEvent, at: float) -> None:
        if self._file is None:
            return
        line = {"t": round(at - self.start, 6), **to_data(event)}
        try:
            self._file.write(orjson.dumps(line) + b"\n")
            self._file.flush()
            self.written += 1
        except OSError as exc:
            log.error("cannot write the event log %s (%s); no longer logging", self.path, exc)
            self._file = None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read_events(path: Path) -> Iterator[tuple[float, InputEvent]]:
    """(seconds since the start, event) for every readable line; others are skipped
    with one warning each."""
    with path.open("rb") as f:
        for number, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                item = orjson.loads(raw)
                t = float(item.pop("t"))
                event = read_input(item)
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
                event = None
            if event is None:
                log.warning("%s:%d is not an event; skipped", path, number)
                continue
            yield t, event
