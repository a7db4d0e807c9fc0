"""What every benchmark shares: percentiles, rates, the machine a run was measured on,
and the JSON file a run leaves in ``bench/results/`` for ``bench/report.py``.

A figure without the machine it ran on cannot be compared with the next one, so every
result file carries :func:`machine` — CPU model, cores, Python, OS, the versions of the
libraries that decide the relay's speed (aiohttp, uvloop, orjson) — and the load
average at the start and end of the run: a shared, busy machine shows there first.
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
LIBRARIES = ("aiohttp", "uvloop", "orjson", "pygame-ce", "mido", "numpy")


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` from 0 to 1) of an ascending, non-empty sequence:
    the smallest value with at least ``q`` of the values at or below it."""
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def summary_ms(sorted_ns: Sequence[int]) -> dict[str, float | None]:
    """p50, p99 and max in milliseconds of ascending nanosecond durations (None each
    when there are none)."""
    if not sorted_ns:
        return {"p50": None, "p99": None, "max": None}
    return {
        "p50": percentile(sorted_ns, 0.50) / 1e6,
        "p99": percentile(sorted_ns, 0.99) / 1e6,
        "max": sorted_ns[-1] / 1e6,
    }


def rate(count: float, seconds: float) -> float:
    """``count`` a second over ``seconds`` (0 for an empty window)."""
    return count / seconds if seconds > 0 else 0.0


def cpu_model() -> str:
    """The CPU's model name as the kernel reports it ("unknown" off Linux)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def load() -> list[float]:
    """The 1, 5 and 15 minute load averages (empty where the OS has none)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def machine(load_at_start: Sequence[float], **extra: Any) -> dict[str, Any]:
    """The machine a run was measured on, with the load average at its start (passed
    in: read it before the run) and now, at its end."""
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "affinity": affinity,  # the CPUs this process ran on (a script may pin itself)
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "os": platform.platform(),
        "libraries": library_versions(),
        "load": {"start": list(load_at_start), "end": load()},
        **extra,
    }


def busy_note(m: Mapping[str, Any]) -> str | None:
    """A note for a run during which the machine had more runnable work than cores."""
    start, end = m["load"]["start"], m["load"]["end"]
    busiest = max([*start[:1], *end[:1]], default=0.0)
    cores = m["cores"] or 1
    if busiest <= cores:
        return None
    return (
        f"a shared, busy machine: load average up to {busiest:.1f} on {cores} cores during "
        f"the run (start {start}, end {end}); other processes competed for the CPU, so "
        "expect noise, above all in the tails"
    )


def write_result(
    path: str | Path,
    script: str,
    load_at_start: Sequence[float],
    settings: Mapping[str, Any],
    figures: Mapping[str, Any],
    *,
    notes: Sequence[str] = (),
    **machine_extra: Any,
) -> Path:
    """Save one run as JSON: what ran (``script``, its ``settings``), where (the
    machine), when (UTC), and its ``figures`` — the numbers ``bench/report.py`` turns
    into the README's tables."""
    doc: dict[str, Any] = {
        "script": script,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(load_at_start, **machine_extra),
        "notes": list(notes),
        "settings": dict(settings),
        "figures": dict(figures),
    }
    note = busy_note(doc["machine"])
    if note:
        doc["notes"].insert(0, note)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return out
