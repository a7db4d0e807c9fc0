"""The relay benchmark's results: one :class:`Result` per scenario and relay, filled
from the load generator's raw counts, the text report and the targets."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench.scenarios import BASELINE, RELAYS, SCENARIOS, Relay
from bench.stats import rate

SATURATED_CPU_PCT = 90.0
OTHER_CPU_NOTE_PCT = 10.0


@dataclass
class Result:
    scenario: str
    relay: str
    window_s: float = 0.0
    offered_per_s: float = 0.0
    events: int = 0
    offered: int = 0
    delivered: int = 0
    missing: int = 0
    duplicates: int = 0
    gaps: int = 0
    delivered_pct: float = 0.0
    p50_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    deliveries_per_s: float = 0.0
    relay_cpu_pct: float = 0.0
    relay_sys_pct: float = 0.0
    relay_us_per_delivery: float | None = None
    frames_per_s: float = 0.0
    deliveries_per_frame: float | None = None
    load_cpu_pct: float = 0.0
    load_sys_pct: float = 0.0
    other_cpu_pct: float = 0.0
    sched_lag_ms: float = 0.0
    load_saturated: bool = False
    wall_s: float = 0.0
    error: str | None = None
    notes: list[str] = field(default_factory=list)


def fill(r: Result, raw: dict[str, Any]) -> None:
    w = raw["window_s"]
    r.window_s = w
    r.events = raw["events"]
    r.offered = raw["offered"]
    r.offered_per_s = rate(r.offered, w)
    r.delivered = raw["delivered"]
    r.duplicates = raw["duplicates"]
    r.missing = r.offered - r.delivered
    r.gaps = raw["gaps"]
    r.delivered_pct = 100.0 * r.delivered / r.offered if r.offered else 0.0
    lat = raw["latency_ms"]
    r.p50_ms, r.p99_ms, r.max_ms = lat["p50"], lat["p99"], lat["max"]
    r.deliveries_per_s = rate(raw["received_in_window"], w)
    relay_cpu = raw["relay_user_s"] + raw["relay_sys_s"]
    r.relay_cpu_pct = 100.0 * relay_cpu / w
    r.relay_sys_pct = 100.0 * raw["relay_sys_s"] / w
    if raw["received_in_window"]:
        r.relay_us_per_delivery = 1e6 * relay_cpu / raw["received_in_window"]
        r.deliveries_per_frame = raw["received_in_window"] / max(1, raw["frames_in_window"])
    r.frames_per_s = rate(raw["frames_in_window"], w)
    load_cpu = raw["load_user_s"] + raw["load_sys_s"]
    r.load_cpu_pct = 100.0 * load_cpu / w
    r.load_sys_pct = 100.0 * raw["load_sys_s"] / w
    r.other_cpu_pct = max(0.0, 100.0 * (raw["machine_cpu_s"] - relay_cpu - load_cpu) / w)
    r.sched_lag_ms = raw["sched_lag_ms"]
    r.load_saturated = r.load_cpu_pct >= SATURATED_CPU_PCT or r.sched_lag_ms > 50.0
    if r.load_saturated and r.relay_cpu_pct >= SATURATED_CPU_PCT:
        r.notes.append(
            f"load generator near saturation too (CPU {r.load_cpu_pct:.0f} %, schedule lag "
            f"{r.sched_lag_ms:.1f} ms) with the relay at {r.relay_cpu_pct:.0f} %: the relay "
            "is at its limit, and latency includes some queueing in the load generator"
        )
    elif r.load_saturated:
        r.notes.append(
            f"load generator saturated (CPU {r.load_cpu_pct:.0f} %, schedule lag "
            f"{r.sched_lag_ms:.1f} ms) with the relay at {r.relay_cpu_pct:.0f} %: these "
            "numbers are bounded by the load generator, not the relay"
        )
    if r.other_cpu_pct >= OTHER_CPU_NOTE_PCT:
        r.notes.append(
            f"other processes used {r.other_cpu_pct:.0f} % of a core during the window: "
            "expect noise, above all in the latency tail"
        )
    if r.missing:
        r.notes.append(
            f"{r.missing} deliveries missing after {raw['drain_s']:.1f} s of drain"
            + (f" ({raw['gap_events']} reported in {r.gaps} gap frames)" if r.gaps else "")
        )
    if r.duplicates:
        r.notes.append(f"{r.duplicates} duplicate deliveries")
    if raw["closed_by_relay"]:
        r.notes.append(f"the relay closed {raw['closed_by_relay']} connections during the run")
    for e in raw["client_errors"]:
        r.notes.append(f"a client got: {e}")


# --- the report ----------------------------------------------------------------------


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def table(results: list[Result]) -> str:
    head = (
        "scenario",
        "relay",
        "offered/s",
        "delivered %",
        "p50 ms",
        "p99 ms",
        "max ms",
        "deliveries/s",
        "relay CPU %",
        "load CPU %",
    )
    rows = [head]
    for r in results:
        if r.error:
            rows.append((r.scenario, r.relay, "ERROR", "", "", "", "", "", "", ""))
            continue
        rows.append(
            (
                r.scenario,
                r.relay,
                f"{r.offered_per_s:,.0f}",
                f"{r.delivered_pct:.3f}",
                fmt(r.p50_ms, ".2f"),
                fmt(r.p99_ms, ".2f"),
                fmt(r.max_ms, ".1f"),
                f"{r.deliveries_per_s:,.0f}",
                f"{r.relay_cpu_pct:.0f}",
                f"{r.load_cpu_pct:.0f}" + ("!" if r.load_saturated else ""),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = []
    for n, row in enumerate(rows):
        cells = [
            c.ljust(w) if i < 2 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append(" | ".join(cells))
        if n == 0:
            lines.append("-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "-"
    return f"{a / b:.3g}x"


def checks(results: list[Result], relays: dict[str, Relay] = RELAYS) -> list[dict[str, Any]]:
    by = {(r.scenario, r.relay): r for r in results if not r.error}
    out: list[dict[str, Any]] = []
    for key, relay, p99_limit in (
        ("a", "dialjam", 1.5),
        ("b", "dialjam", 12.0),
        ("b", "dialjam-defaults", 12.0),
    ):
        r = by.get((key, relay))
        if r is None:
            continue
        ok = r.missing == 0 and r.duplicates == 0 and r.p99_ms is not None
        ok = ok and r.p99_ms is not None and r.p99_ms <= p99_limit
        out.append(
            {
                "scenario": key,
                "relay": relay,
                "target": f"100 % delivered, p99 <= {p99_limit:g} ms",
                "measured": f"{r.delivered_pct:.3f} % delivered, p99 {fmt(r.p99_ms, '.2f')} ms",
                "pass": ok,
            }
        )
    out += backplane_checks(by)
    d, n = by.get(("c", "dialjam")), by.get(("c", BASELINE))
    if d is not None and n is not None and n.deliveries_per_s:
        x = d.deliveries_per_s / n.deliveries_per_s
        out.append(
            {
                "scenario": "c",
                "relay": "dialjam",
                "target": f">= 4x the deliveries/s of {relays[BASELINE].label}",
                "measured": f"{x:.2f}x ({d.deliveries_per_s:,.0f} vs {n.deliveries_per_s:,.0f})",
                "pass": x >= 4.0,
            }
        )
    return out


def backplane_checks(by: dict[tuple[str, str], Result]) -> list[dict[str, Any]]:
    """--backplane's targets: two relays sharing channels through Redis beside one."""
    out: list[dict[str, Any]] = []
    for key in ("a", "b"):
        one, two = by.get((key, "dialjam")), by.get((key, "dialjam-redis"))
        if one is None or two is None or one.p99_ms is None or two.p99_ms is None:
            continue
        whole = two.missing == 0 and two.duplicates == 0
        added = two.p99_ms - one.p99_ms
        out.append(
            {
                "scenario": key,
                "relay": "dialjam-redis",
                "target": "100 % delivered"
                + (", p99 <= single relay + 2 ms" if key == "a" else ""),
                "measured": f"{two.delivered_pct:.3f} % delivered, p99 {two.p99_ms:.2f} ms "
                f"({added:+.2f} ms)",
                "pass": whole and (key != "a" or added <= 2.0),
            }
        )
    one, two = by.get(("d", "dialjam")), by.get(("d", "dialjam-redis"))
    if one is not None and two is not None and one.deliveries_per_s:
        x = two.deliveries_per_s / one.deliveries_per_s
        out.append(
            {
                "scenario": "d",
                "relay": "dialjam-redis",
                "target": ">= 1.6x the deliveries/s of one relay",
                "measured": f"{x:.2f}x ({two.deliveries_per_s:,.0f} vs "
                f"{one.deliveries_per_s:,.0f})",
                "pass": x >= 1.6,
            }
        )
    return out


def report(
    results: list[Result], pinning: str, elapsed: float, relays: dict[str, Relay] = RELAYS
) -> str:
    ok = [r for r in results if not r.error]
    by = {(r.scenario, r.relay): r for r in ok}
    keys = list(dict.fromkeys(r.scenario for r in results))
    lines = [f"dialjam relay benchmark — {pinning}", ""]
    lines += [f"  ({key}) {SCENARIOS[key].title}" for key in keys]
    lines += [f"  {r.key}: {r.label}" for r in relays.values()]
    lines += ["", table(results)]
    ratios = [
        (key, mine, d, base, n)
        for key in keys
        for mine in [k for k in relays if k.startswith("dialjam")]
        for base in (
            BASELINE,
            "naive",
            *([k for k in relays if "@" in k] if mine == "dialjam" else []),
        )
        if (d := by.get((key, mine))) is not None and (n := by.get((key, base))) is not None
    ]
    if ratios:
        lines += ["", "ratios:"]
    for key, mine, d, base, n in ratios:
        lines.append(
            f"  ({key}) {mine} / {base}: deliveries/s "
            f"{ratio(d.deliveries_per_s, n.deliveries_per_s)}"
            f"  p50 {ratio(d.p50_ms, n.p50_ms)}  p99 {ratio(d.p99_ms, n.p99_ms)}"
            f"  relay CPU per delivery "
            f"{ratio(d.relay_us_per_delivery, n.relay_us_per_delivery)}"
            f" ({fmt(d.relay_us_per_delivery, '.2f')} vs "
            f"{fmt(n.relay_us_per_delivery, '.2f')} us)"
        )
    verdicts = checks(results, relays)
    if verdicts:
        lines += ["", "targets:"]
    for c in verdicts:
        verdict = "PASS" if c["pass"] else "MISS"
        lines.append(f"  {verdict}  ({c['scenario']}) {c['relay']}: {c['target']}: {c['measured']}")
    lines += ["", "notes:"]
    lines += [f"  ({r.scenario}) {r.relay}: {n}" for r in results for n in r.notes]
    lines += [f"  ({r.scenario}) {r.relay}: ERROR {r.error}" for r in results if r.error]
    if any(r.load_saturated for r in ok):
        lines.append("  '!' = the load generator was (nearly) saturated in that run")
    elif ok:
        lines.append("  the load generator was not saturated in any run")
    windows = sorted({f"{r.window_s:.1f}" for r in ok})
    lines += ["", f"window {'/'.join(windows) or '-'} s per run; total {elapsed:.0f} s"]
    return "\n".join(lines)
