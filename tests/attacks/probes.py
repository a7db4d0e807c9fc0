"""What the attack stage measures in its own process, where the billboard and its
relay run: garbage-collection pauses, log records, resident memory, and the CPU the
relay and engine threads ran and waited for (Linux's /proc)."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterable
from pathlib import Path


class GcPauses:
    """Python's garbage collections in this process and how long each held every
    thread (gc.callbacks): a full one walks every object of the billboard, pytest's
    included."""

    def __init__(self) -> None:
        self.pauses: list[tuple[float, float, int]] = []  # (began, seconds, generation)
        self._began = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.monotonic()
        else:
            self.pauses.append((self._began, time.monotonic() - self._began, info["generation"]))

    def since(self, moment: float) -> list[tuple[float, float, int]]:
        return [p for p in self.pauses if p[0] >= moment]


class LogLines(logging.Handler):
    """Every record at INFO and above (the billboard's log level), from any thread."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)  # list.append is atomic

    def since(self, mark: int) -> list[logging.LogRecord]:
        return self.records[mark:]


def resident() -> tuple[int, int]:
    """(VmRSS, VmHWM) of this process, in bytes."""
    fields: dict[str, int] = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) * 1024
    return fields["VmRSS"], fields["VmHWM"]


def reset_peak() -> None:
    """Start VmHWM afresh (Linux ≥ 4.0: "5" to clear_refs), so a peak is this attack's."""
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def cpu_times(threads: Iterable[threading.Thread]) -> tuple[float, float]:
    """Seconds `threads` have run on a CPU, and spent runnable but waiting for one
    (the kernel's run-queue delay: what other processes took), from
    /proc/self/task/TID/schedstat."""
    ran = waited = 0
    for thread in threads:
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = Path(f"/proc/self/task/{thread.native_id}/schedstat").read_text().split()
            ran += int(stat[0])
            waited += int(stat[1])
    return ran / 1e9, waited / 1e9


def show_threads() -> list[threading.Thread]:
    """The billboard's relay thread and its engine thread (billboard/show.py)."""
    names = ("dialjam-relay", "dialjam-scheduler")
    return [t for t in threading.enumerate() if t.name in names and t.is_alive()]
