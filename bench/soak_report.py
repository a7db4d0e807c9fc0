"""The soak's figures per ingress path, its checks and its report."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from bench.soak_billboard import EventLogFigures, Memory, Notes
from bench.soak_crowd import (
    Report,
)
from bench.soak_plan import DIGIT_RUN, EXPECTED_RELAY_ERRORS, MEMORY_GROWTH_MIB, TITLES
from bench.soak_seed import Arrivals, SeedBooks
from bench.stats import percentile

# -- the run ---------------------------------------------------------------------------


@dataclass
class PathFigures:
    """One ingress path's figures for the table."""

    name: str
    callers: int = 0
    failed: int = 0
    sent: int = 0
    acked: int | None = None
    arrived: int = 0
    lost: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    p50_ms: float | None = None
    p99_ms: float | None = None
    errors: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


@dataclass
class Soak:
    duration: float
    warmup: float
    seed: int
    paths: list[PathFigures] = field(default_factory=list)
    lost_acked: int = 0
    memory: Memory = field(default_factory=Memory)
    health: dict[str, Any] = field(default_factory=dict)
    notes: Notes = field(default_factory=Notes)
    eventlog: EventLogFigures = field(default_factory=EventLogFigures)
    wire_leaks: list[str] = field(default_factory=list)
    stderr_bad: list[str] = field(default_factory=list)
    stderr_warnings: int = 0
    stderr_leaks: list[str] = field(default_factory=list)
    exit_status: int | None = None
    numbers: int = 0
    windows: set[str] = field(default_factory=set)  # DIGIT_RUN digits of every number
    billboard_started: float = 0.0  # time.monotonic()
    crowd_began_s: float = 0.0  # after the billboard was started
    failure: str | None = None  # the run itself could not happen
    elapsed_s: float = 0.0


def from_report(path: str, report: Report) -> PathFigures:
    return PathFigures(
        name=path,
        callers=report.callers,
        failed=report.callers_failed,
        sent=report.presses_sent,
        arrived=report.presses_seen,
        lost=report.lost,
        duplicated=report.duplicated,
        out_of_order=report.out_of_order,
        p50_ms=report.latency_p50_ms,
        p99_ms=report.latency_p99_ms,
        errors=dict(report.errors),
        problems=[] if report.ok else report.problems(),
    )


def from_seed(books: SeedBooks, arrivals: Arrivals, plans: int) -> tuple[PathFigures, int]:
    """The seed path's figures and the acknowledged presses that never arrived."""
    acked = [p for p in books.presses if p.seq is not None]
    latencies: list[float] = []
    for press in acked:
        seen = arrivals.seed_digits.get(press.seq or -1)
        if seen is not None and seen[0] == press.key:
            latencies.append(1000 * (seen[1] - press.sent))
    latencies.sort()
    row = PathFigures(
        name="seed",
        callers=plans,
        failed=books.failed,
        sent=len(books.presses),
        acked=len(acked),
        arrived=len(latencies),
        lost=len(acked) - len(latencies),
        p50_ms=percentile(latencies, 0.50) if latencies else None,
        p99_ms=percentile(latencies, 0.99) if latencies else None,
        errors=dict(books.errors),
    )
    if row.lost:
        row.problems.append(f"{row.lost} acknowledged presses never arrived")
    return row, row.lost


# -- the report ------------------------------------------------------------------------


def checks(soak: Soak) -> list[tuple[str, bool, str]]:
    """(name, held, figures) for every check."""
    out: list[tuple[str, bool, str]] = []
    problems = [f"{p.name}: {'; '.join(p.problems)}" for p in soak.paths if p.problems]
    sent = sum(p.sent for p in soak.paths)
    out.append(
        (
            "presses",
            bool(soak.paths) and not problems and sent > 0,
            "; ".join(problems)
            or f"{sent:,} sent on {len(soak.paths)} paths: every one arrived once, in order",
        )
    )
    acked = sum(p.acked or 0 for p in soak.paths)
    out.append(
        (
            "acknowledged",
            soak.lost_acked == 0 and acked > 0,
            f"{soak.lost_acked} of {acked:,} acknowledged presses lost",
        )
    )
    crowd_errors = Counter[str]()
    for p in soak.paths:
        crowd_errors.update({f"{p.name}: {k}": v for k, v in p.errors.items()})
    relay_errors = {
        k: v for k, v in soak.health.get("errors", {}).items() if k not in EXPECTED_RELAY_ERRORS
    }
    expected = {
        k: v for k, v in soak.health.get("errors", {}).items() if k in EXPECTED_RELAY_ERRORS
    }
    drops = soak.health.get("drops", 0)
    ari_links = soak.health.get("ari", {}).get("connections")
    listed = [f"{k} ×{v}" for k, v in sorted(crowd_errors.items())]
    listed += [f"relay {k} ×{v}" for k, v in sorted(relay_errors.items())]
    listed += [f"relay drops ×{drops}"] if drops else []
    listed += [f"the relay's ARI link connected {ari_links} times"] if ari_links != 1 else []
    out.append(
        (
            "errors",
            not listed and bool(soak.health),
            ", ".join(listed)
            or "crowd 0, relay /healthz 0 beyond the expected ("
            + (", ".join(f"{k} ×{v}" for k, v in sorted(expected.items())) or "none")
            + ": the fake Asterisk's start and stop), 0 drops, one ARI connection",
        )
    )
    m = soak.memory
    if len(m.samples) >= 2:
        start, warm, end = m.samples[0][1], m.at(soak.warmup), m.samples[-1][1]
        top = max(mib for _, mib in m.samples)
        ratio, growth = end / warm, end - warm
        slope = m.slope_mib_per_h(soak.warmup)
        trend = f", trend {slope:+.1f} MiB/h" if slope is not None else ""
        kept = soak.notes.after
        per_note = f", {growth * 2**20 / kept:.0f} B a note" if kept and growth > 0 else ""
        out.append(
            (
                "memory",
                growth < MEMORY_GROWTH_MIB,
                f"billboard RSS start {start:.1f}, after warm-up ({soak.warmup:g} s) {warm:.1f}, "
                f"end {end:.1f}, max {top:.1f} MiB (VmHWM {m.peak_hwm_mib:.1f}); "
                f"end / after warm-up {ratio:.3f} ({growth:+.1f} MiB{trend}; flat: "
                f"< {MEMORY_GROWTH_MIB:g} MiB); meanwhile the recording kept {kept:,} more "
                f"notes{per_note}",
            )
        )
    else:
        out.append(("memory", False, "too few samples of the billboard's memory"))
    n = soak.notes
    out.append(
        (
            "notes",
            n.error is None and n.stuck == 0 and n.played > 0,
            n.error
            or f"{n.played:,} notes on {n.tracks} tracks, {n.stuck} stuck, "
            f"{n.stray_offs} stray note-offs, longest held {n.longest_s:.2f} s",
        )
    )
    out.append(
        (
            "stderr",
            not soak.stderr_bad and soak.exit_status == 0,
            f"exit status {soak.exit_status}; "
            + (
                f"{len(soak.stderr_bad)} Traceback/ERROR lines, first: "
                + soak.stderr_bad[0][: 2000 if soak.stderr_bad[0].startswith("Timeout (") else 160]
                if soak.stderr_bad
                else f"no Traceback, no ERROR ({soak.stderr_warnings} WARNING lines)"
            ),
        )
    )
    leaks = soak.eventlog.leaks + soak.wire_leaks + soak.stderr_leaks
    e = soak.eventlog
    out.append(
        (
            "privacy",
            not leaks and e.events > 0,
            f"the event log ({e.events:,} events), the seed subscriber's events and stderr: "
            + (
                f"{len(leaks)} runs of the callers' numbers, e.g. {leaks[0][:3]}…"
                if leaks
                else f"no run of ≥ {DIGIT_RUN} digits of the {soak.numbers} numbers called from"
            ),
        )
    )
    return out


def render(soak: Soak) -> tuple[str, bool]:
    lines = [
        f"dialjam soak: {soak.duration:g} s, every path at once (seed {soak.seed}, "
        f"{soak.elapsed_s:.0f} s in all)",
        "",
        f"  {'path':<15} {'callers':>7} {'sent':>7} {'acked':>7} {'arrived':>7} "
        f"{'lost':>5} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6}",
    ]
    for p in soak.paths:
        acked = "-" if p.acked is None else f"{p.acked:,}"
        p50 = "-" if p.p50_ms is None else f"{p.p50_ms:.1f}"
        p99 = "-" if p.p99_ms is None else f"{p.p99_ms:.1f}"
        lines.append(
            f"  {TITLES[p.name]:<15} {p.callers:>7} {p.sent:>7,} {acked:>7} {p.arrived:>7,} "
            f"{p.lost:>5} {p50:>7} {p99:>7} {sum(p.errors.values()):>6}"
        )
    lines.append("")
    results = checks(soak)
    if soak.failure:
        results.insert(0, ("run", False, soak.failure))
    for name, held, figures in results:
        lines.append(f"  {name:<13} {'PASS' if held else 'FAIL'}  {figures}")
    failed = [name for name, held, _ in results if not held]
    lines.append("")
    lines.append(f"  verdict       {'PASS' if not failed else 'FAIL: ' + ', '.join(failed)}")
    return "\n".join(lines), not failed


def summary(soak: Soak) -> dict[str, Any]:
    """The figures the README quotes, from a finished run."""
    m = soak.memory
    samples = m.samples
    return {
        "presses": sum(p.sent for p in soak.paths),
        "callers": sum(p.callers for p in soak.paths),
        "lost": sum(p.lost for p in soak.paths),
        "duplicated": sum(p.duplicated for p in soak.paths),
        "out_of_order": sum(p.out_of_order for p in soak.paths),
        "p99_ms": {p.name: p.p99_ms for p in soak.paths},
        "acknowledged": sum(p.acked or 0 for p in soak.paths),
        "lost_acknowledged": soak.lost_acked,
        "notes": soak.notes.played,
        "stuck": soak.notes.stuck,
        "rss_after_warmup_mib": m.at(soak.warmup) if samples else None,
        "rss_end_mib": samples[-1][1] if samples else None,
        "checks": {name: held for name, held, _ in checks(soak)},
    }
