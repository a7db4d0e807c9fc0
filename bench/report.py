#!/usr/bin/env python3
"""The README's figures, generated from the results the benchmarks committed.

Every benchmark saves its figures with ``--json bench/results/<script>.json`` (``make
bench`` does), with the machine it ran on and the load average at its start and end.
This script rewrites each section of README.md between a pair of markers::

    <!-- bench:NAME -->
    ...generated from bench/results/NAME.json...
    <!-- /bench:NAME -->

so a figure in the README is always one a script measured, and says where and when.
``--check`` changes nothing and exits 1 when the README differs from what the results
give (tests/bench/test_report.py runs it).

    python bench/report.py [--check] [--readme PATH] [--results DIR]

Why this module is long: it holds one small formatter per benchmark (a dozen), each
the README's words for that benchmark's figures, and a formatter keeps reading the
format of a result committed before its benchmark grew (frame_time's one size):
splitting them apart would scatter what the README says across files.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
RESULTS = ROOT / "bench" / "results"
MARKER = re.compile(r"(<!-- bench:([\w-]+) -->\n)(.*?)(<!-- /bench:\2 -->)", re.S)
BUSY_LOAD = 1.5  # load average per core above which a run is called busy
WIDTH = 88
UNIT = re.compile(r" (?=(?:%|ms|µs|MiB|s)\b|%|×)")  # a number keeps its unit on its line


class ReportError(Exception):
    """A section has no results to come from, or the results lack a figure."""


# -- numbers as the README writes them ---------------------------------------------------


def num(value: float | None, digits: int = 3) -> str:
    """`digits` significant figures, thousands grouped: 0.153 → 0.15 (two), 1980.4 →
    1,980, 116402 → 116,000."""
    if value is None:
        return "–"
    if value == 0:
        return "0"
    magnitude = len(str(int(abs(value)))) if abs(value) >= 1 else 0
    if magnitude >= digits:
        step = 10 ** (magnitude - digits)
        return f"{round(value / step) * step:,.0f}"
    if abs(value) >= 1:
        return f"{value:,.{digits - magnitude}f}"
    return f"{value:.{digits - 1}f}"


def pct(value: float) -> str:
    """A share in percent: 100 % stays whole, the rest keeps what matters."""
    if value >= 99.9995:
        return "100 %"
    return f"{value:.1f} %" if value >= 1 else f"{value:.2f} %"


def times(value: float) -> str:
    return f"{num(value, 2 if value < 10 else 3)}×"


def wrap(text: str) -> str:
    """Paragraphs and list items filled to the README's width; tables and blank lines
    left as they are."""
    out = []
    for block in text.split("\n\n"):
        if block.lstrip().startswith("|"):
            out.append(block)
            continue
        items = re.split(r"\n(?=- )", block)
        out.append(
            "\n".join(
                textwrap.fill(
                    UNIT.sub("\x00", " ".join(item.split())),
                    WIDTH,
                    subsequent_indent="  " if item.startswith("- ") else "",
                    break_long_words=False,
                    break_on_hyphens=False,
                )
                for item in items
            ).replace("\x00", " ")
        )
    return "\n\n".join(out)


def symbols(text: str) -> str:
    """The run's own ASCII (<=, >=, 4x) as the README writes it."""
    return re.sub(r"(\d)x\b", r"\1×", text.replace("<=", "≤").replace(">=", "≥"))


def machine_line(doc: dict[str, Any], libraries: bool = False) -> str:
    """Where and when a run was measured, and how busy the machine was."""
    m = doc["machine"]
    libs = m.get("libraries", {})
    versions = ", ".join(f"{k} {v}" for k, v in libs.items() if v and k in LIBRARY_NAMES)
    start, end = m["load"]["start"], m["load"]["end"]
    cores = m.get("cores") or 1
    busy = max(start[:1] + end[:1], default=0.0) / cores >= BUSY_LOAD
    load = f"load average {start[0]:.1f} → {end[0]:.1f}" if start and end else "load unknown"
    return (
        f"(Measured {doc['date'][:10]}, {m['cpu']}, {cores} cores, Python {m['python']}"
        + (f", {versions}" if libraries and versions else "")
        + f"; {load}"
        + (": a shared, busy machine, expect noise" if busy else "")
        + ".)"
    )


LIBRARY_NAMES = ("aiohttp", "uvloop", "orjson")


# -- the sections ------------------------------------------------------------------------


def relay_load(doc: dict[str, Any]) -> str:
    f, s = doc["figures"], doc["settings"]
    results = {(r["scenario"], r["relay"]): r for r in f["results"]}
    labels = {key: relay["label"] for key, relay in s["relays"].items()}
    tuned = " ".join(
        f"`{k}={v}`" for k, v in s["relays"]["dialjam"]["env"].items() if k != "DIALJAM_OPEN"
    )
    lines = [
        "`bench/relay_load.py`: the relay in its own process pinned to one core, the load",
        "generator (a lean raw-asyncio WebSocket client on uvloop) pinned to the other,",
        f"loopback only, {s['duration']:g} s windows. Each scenario runs, one after the",
        "other, against these relays (each a rehearsal relay on loopback, `DIALJAM_OPEN=1`:",
        "anonymous clients publish, as the baseline's do):",
        "",
        f"- **{labels['dialjam']}**: rate limits and the per-address cap lifted, a send",
        f"  queue of 100,000 events ({tuned});",
        f"- **{labels['dialjam-defaults']}**: the settings dialjam ships with (a send queue",
        "  of 2,048 events, 20 frames/s a connection, 500 connections an address) — in (b)",
        "  only: (a)'s 1,005 sockets from one address and (c)'s flat-out publisher are",
        "  refused by those limits, as they should be;",
        f"- **{labels['naive']}**: `bench/naive_relay.py`, the per-message relay people write",
        "  (`for ws in subscribers: await ws.send_str(json.dumps(data))`), on asyncio's",
        "  event loop with the stdlib json module;",
        f"- **{labels['naive-uvloop']}**: the same code on the event loop and JSON library",
        "  dialjam runs on. dialjam's ratios are taken against this one, so they measure",
        "  the design, not the libraries.",
        "",
        machine_line(doc, libraries=True),
        "",
        "| scenario | relay | offered/s | delivered | p50 ms | p99 ms | max ms "
        "| deliveries/s | relay CPU |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    titles = {
        "a": "(a) 1,000 publishers × 2/s → 5 subscribers",
        "b": "(b) 50 publishers × 20/s → 200 v2 subscribers",
        "c": "(c) 1 publisher flat out → 5 v2 subscribers",
    }
    shown: set[str] = set()
    for r in f["results"]:
        title = "" if r["scenario"] in shown else titles[r["scenario"]]
        shown.add(r["scenario"])
        label = labels[r["relay"]]
        if r["error"]:
            lines.append(f"| {title} | {label} | error | | | | | | |")
            continue
        lines.append(
            f"| {title} | {label} | {num(r['offered_per_s'], 3)} | {pct(r['delivered_pct'])} "
            f"| {num(r['p50_ms'])} | {num(r['p99_ms'])} | {num(r['max_ms'])} "
            f"| {num(r['deliveries_per_s'], 3)} | {r['relay_cpu_pct']:.0f} % |"
        )
    lines.append("")
    verdicts = []
    for c in f["checks"]:
        verdict = "met" if c["pass"] else "missed"
        verdicts.append(
            symbols(
                f"({c['scenario']}) {labels[c['relay']]}: {c['target']} — {verdict}, "
                f"{c['measured']}"
            )
        )
    if verdicts:
        lines.append("Targets: " + "; ".join(verdicts) + ".")
    ratios = []
    for key in ("a", "b", "c"):
        d = results.get((key, "dialjam"))
        if d is None or d["error"]:
            continue
        for base in ("naive-uvloop", "naive"):
            n = results.get((key, base))
            if n is None or n["error"] or not n["deliveries_per_s"]:
                continue
            cpu = ""
            if d["relay_us_per_delivery"] and n["relay_us_per_delivery"]:
                cpu = (
                    f", relay CPU per delivery "
                    f"{times(d['relay_us_per_delivery'] / n['relay_us_per_delivery'])}"
                )
            ratios.append(
                f"({key}) against {labels[base]}: deliveries/s "
                f"{times(d['deliveries_per_s'] / n['deliveries_per_s'])}{cpu}"
            )
    if ratios:
        lines.append("")
        lines.append(f"{labels['dialjam']} beside the baselines: " + "; ".join(ratios) + ".")
    busy = [r for r in f["results"] if not r["error"] and r["other_cpu_pct"] >= 10]
    saturated = [r for r in f["results"] if not r["error"] and r["load_saturated"]]
    notes = []
    if busy:
        worst = max(r["other_cpu_pct"] for r in busy)
        notes.append(
            f"other processes used up to {worst:.0f} % of a core during {len(busy)} of "
            f"{len(f['results'])} runs"
        )
    if saturated:
        notes.append(
            "the load generator fell behind its schedule in "
            + ", ".join(f"({r['scenario']}) {labels[r['relay']]}" for r in saturated)
            + ": those runs are bounded by the load, not the relay"
        )
    if notes:
        lines.append("")
        lines.append("Noise: " + "; ".join(notes) + ". In (c) latency is mostly queueing,")
        lines.append("bounded by the load generator's in-flight cap.")
    else:
        lines.append("")
        lines.append("In (c) latency is mostly queueing, bounded by the load generator's")
        lines.append("in-flight cap.")
    return wrap("\n".join(lines))


def engine_speed(doc: dict[str, Any]) -> str:
    f = doc["figures"]
    events = f["events_per_s"]
    return (
        f"- **Engine** (`bench/engine_speed.py`): {num(events)} events/s on one core "
        f"({num(f['us_per_event'], 2)} µs an event: {f['mix_pct']['digit']:.0f} % digits, "
        f"joins, leaves, commands; {f['callers']} callers), "
        f"{times(events / f['target_events_per_s'])} the "
        f"{num(f['target_events_per_s'])}/s target. {machine_line(doc)}"
    )


def musicality(doc: dict[str, Any]) -> str:
    """The 8-caller crowd's measures beside the revision it is compared with, as the
    issue's table: measure, now, before, target."""
    f = doc["figures"]
    now = f.get("8 callers, this")
    before = next((v for k, v in f.items() if k.startswith("8 callers, @")), None)
    if now is None:
        raise ReportError("musicality.json has no 8-caller run")

    def val(figs: dict[str, Any] | None, key: str, fmt: str, unit: str = "") -> str:
        if figs is None or figs.get(key) is None:
            return "—"
        return f"{format(figs[key], fmt)}{unit}"

    def regs(figs: dict[str, Any] | None) -> str:
        if figs is None:
            return "—"
        r = figs.get("registers", {})
        return ", ".join(f"{t} ≤ {r[t][1]}" for t in ("bass", "chords", "pad", "bells") if t in r)

    def limiter(figs: dict[str, Any] | None) -> str:
        if figs is None or figs.get("limiter_pct") is None:
            return "none"
        return f"{figs['limiter_pct']:.1f} % of the time, ≤ {figs['limiter_most_db']:.1f} dB"

    rows = [
        ("kick on the bar's beat 1, bars with a caller", "kick_on_one_pct", ".0f", " %", "≥ 95 %"),
        ("steps with a semitone rub", "rub_steps_pct", ".0f", " %", "≤ 5 %"),
        ("steps with a tritone", "tritone_steps_pct", ".0f", " %", ""),
        ("mean notes sounding at once", "sounding_mean", ".1f", "", "≤ 6"),
        ("distinct velocities per pitched track (min)", "velocities_min", ".0f", "", "≥ 6"),
        (
            "bars nobody plays with a beat and a bass",
            "empty_bars_grooving_pct",
            ".0f",
            " %",
            "100 %",
        ),
        ("in key", "in_key_pct", ".0f", " %", "100 %"),
        ("integrated loudness (BS.1770)", "lufs", ".1f", " LUFS", "−16 to −12 LUFS"),
        ("true peak", "true_peak_dbtp", ".1f", " dBTP", "≤ −1 dBTP"),
        ("clipped samples", "clipped", ".0f", "", "0"),
        ("stereo: correlation of L and R", "lr_correlation", ".2f", "", "≤ 0.9"),
    ]
    for figs in (now, before):
        if figs is not None and figs.get("velocities"):
            figs["velocities_min"] = min(figs["velocities"].values())
    lines = [
        "- **Musicality** (`bench/musicality.py`): a seeded human-like crowd of 8 callers "
        f"({doc['settings']['rate']} presses/s on average, "
        f"{doc['settings']['duration_s']:.0f} s) through the engine, its notes measured and "
        "its mix rendered offline (`--render`); beside it, the same crowd on the revision "
        f"before the groove bed and the instruments' roles. {machine_line(doc)}",
        "",
        "  | measure | now | before | target |",
        "  |---|---|---|---|",
    ]
    for label, key, fmt, unit, target in rows:
        lines.append(
            f"  | {label} | {val(now, key, fmt, unit)} | {val(before, key, fmt, unit)} | {target} |"
        )
    lines.append(
        f"  | registers (highest MIDI note) | {regs(now)} | {regs(before)} "
        "| bass ≤ 48, chords/pad ≤ 84, others ≤ 96 |"
    )
    lines.append(f"  | the render's master limiter at work | {limiter(now)} | — | rarely |")
    timing = [
        f"{val(figs, 'behind_kick_ms_median', '.1f', ' ms')}; "
        f"{val(figs, 'behind_kick_within_5ms_pct', '.0f', ' %')}"
        for figs in (now, before)
    ]
    lines.append(
        "  | timing: notes behind the kick on its step (median; share within 5 ms) "
        f"| {timing[0]} | {timing[1]} | a few ms |"
    )
    return "\n".join(lines)


def soundfont(doc: dict[str, Any]) -> str:
    """Our samples against FluidSynth's GM SoundFonts: the same night, side by side."""
    f, settings = doc["figures"], doc["settings"]
    lines = [
        "- **Our samples or a SoundFont?** (`bench/soundfont.py`): the musicality crowd's "
        f"night ({settings['callers']} callers, {settings['seconds']:.0f} s) rendered by "
        "the show's own mix, and its recorded .mid (programs, volume, pan and reverb "
        "sends) through FluidSynth (pyfluidsynth) with each GM SoundFont, in "
        f"{settings['block']}-frame blocks on one core. {machine_line(doc)}",
        "",
        "  | engine | × real time | SoundFont in memory | loudness | true peak | L/R correlation |",
        "  |---|---|---|---|---|---|",
    ]
    for name, m in f.items():
        memory = "—" if m.get("rss_mb") is None else f"{m['rss_mb']:.0f} MB"
        lines.append(
            f"  | {name} | {m['x_real_time']:.0f}× | {memory} | {m['lufs']:.1f} LUFS "
            f"| {m['true_peak_dbtp']:.1f} dBTP | {m['lr_correlation']:.2f} |"
        )
    return "\n".join(lines)


def waiting_line(doc: dict[str, Any]) -> str:
    f = doc["figures"]
    calm, flooded = f["calm"], f["flooded"]
    return (
        f"- **The waiting line** (`bench/engine_speed.py`): after {f['flood']:,} callers "
        f"tried to join, a real press costs {num(flooded['press_us'])} µs "
        f"({num(calm['press_us'])} µs with nobody waiting); a departure from the front "
        f"{num(flooded['leave_us'] / 1000)} ms ({flooded['told']:.0f} callers told). "
        f"{machine_line(doc)}"
    )


def frame_time(doc: dict[str, Any]) -> str:
    f, s = doc["figures"], doc["settings"]
    if "runs" not in f:  # one size, one layout: the format of before
        return _frame_time_one_size(doc)

    def cpu(run: dict[str, Any]) -> str:  # results from before it was measured lack it
        return num(run["cpu_p50_ms"]) if run.get("cpu_p50_ms") is not None else "—"

    def server(run: dict[str, Any]) -> str:
        return num(run["x_server_ms"]) if run.get("x_server_ms") is not None else "—"

    def floor(r: dict[str, Any]) -> str:  # results from before it was measured lack it
        return num(r["floor"]["p99_ms"]) if "floor" in r else "—"

    rows = [
        f"  | {key.replace('x', '×', 1)} | {num(r['display']['p50_ms'])} | "
        f"**{num(r['display']['p99_ms'])}** | {f['target_p99_ms'].get(key.split()[0], '—')} | "
        f"{num(r['display+hud']['p99_ms'])} | {num(r['idle']['p99_ms'])} | "
        f"{cpu(r['display'])} | {server(r['display'])} | {floor(r)} |"
        for key, r in f["runs"].items()
    ]
    return (
        f"- **Frame time** (`bench/frame_time.py`): `Display.draw` in milliseconds, SDL "
        f"{doc['machine'].get('sdl_driver', 'dummy')} driver, 8 busy tracks, 4 waiting, "
        f"100 events/s, every effect on, {s['seconds']:g} s a run; a naive redraw is "
        f"{times(f['naive_median_ratio'])} slower (median). CPU: the drawing thread's "
        "time a frame (p50); X: the X server's a frame, copying it to its screen (under "
        "Xvfb); floor: p99 of frames that only lay the static layer and show it, nothing "
        f"drawn (the least an inline frame costs). {machine_line(doc)}\n\n"
        "  | size, layout | p50 | p99 | target p99 | p99, HUD | p99, idle show | CPU | X "
        "| floor |\n"
        "  |---|---|---|---|---|---|---|---|---|\n" + "\n".join(rows)
    )


def _frame_time_one_size(doc: dict[str, Any]) -> str:
    f, s = doc["figures"], doc["settings"]
    d, hud, naive = f["display"], f["display+hud"], f["naive"]
    size = s["size"].replace("x", "×")
    return (
        f"- **Frame time** (`bench/frame_time.py`): `Display.draw` at {size} on the SDL "
        f"{doc['machine'].get('sdl_driver', 'dummy')} driver, 8 busy tracks, 4 waiting, "
        f"100 events/s: p50 {num(d['p50_ms'])} ms, **p99 {num(d['p99_ms'])} ms**, max "
        f"{num(d['max_ms'], 2)} ms (target p99 ≤ {f['target_p99_ms']:g} ms); with the HUD "
        f"p99 {num(hud['p99_ms'])} ms; a naive redraw of everything p99 "
        f"{num(naive['p99_ms'])} ms (median {times(f['naive_median_ratio'])} slower). "
        f"{machine_line(doc)}"
    )


def grid_timing(doc: dict[str, Any]) -> str:
    f = doc["figures"]
    sched = f["scheduler"]
    target = sched["grid → MidiOut.note_on (scheduler)"]
    estimate = sched.get("grid → next frame (computed)")
    press = sched.get("press → MidiOut.note_on (scheduler)")
    jack = sched.get("grid → JACK input arrival")
    where = {
        "thread": "in the same process",
        "child": "in a process of its own",
        "none": "not drawn",
    }[doc["settings"]["display"]]
    text = (
        f"- **Notes on the grid** (`bench/grid_timing.py`): real engine and scheduler, the "
        f"display drawing 1920×1080 at 60 fps {where}, ~{num(doc['settings']['rate'])} "
        f"presses/s from another thread, MIDI out through "
        + ("a real JACK server" if jack else "a timestamping sink (no JACK)")
        + f": a note scheduled ahead is handed to the MIDI port p50 {num(target['p50_ms'], 2)}"
        f" ms, **p99 {num(target['p99_ms'], 2)} ms**, max {num(target['max_ms'], 2)} ms after "
        f"its step (target p99 ≤ {f['target_p99_ms']:g} ms)."
    )
    locked = f.get("frame_locked", {}).get("grid → MidiOut.note_on (draw loop)")
    if locked is not None:
        text += (
            f" A billboard that sends its notes from the draw loop, measured in a second "
            f"show: p99 {num(locked['p99_ms'], 2)} ms "
            f"({times(locked['p99_ms'] / target['p99_ms'])})"
            + (
                f"; the first show's notes at their next frame give "
                f"p99 {num(estimate['p99_ms'], 2)} ms"
                if estimate
                else ""
            )
            + "."
        )
    if jack is not None:
        text += (
            f" An rtmidi input behind JACK (`-p 256`, 5.3 ms cycles) hears them p50 "
            f"{num(jack['p50_ms'], 2)} ms, p99 {num(jack['p99_ms'], 2)} ms after the step: "
            f"JACK delivers at its next cycle, so use `-p 64` or `-p 128` at a venue."
        )
    if press is not None:
        text += (
            f" A press played at once: press → note-on p50 {num(press['p50_ms'], 2)} ms, "
            f"p99 {num(press['p99_ms'], 2)} ms."
        )
    return text + f" {machine_line(doc)}"


def dtmf_speed(doc: dict[str, Any]) -> str:
    f = doc["figures"]
    det, stream = f["detector"], f["twilio_stream"]
    lines = [
        "`bench/dtmf_speed.py`, one core. " + machine_line(doc),
        "",
        f"- **In-band detector**: **{num(det['real_time_factor'])}× real time** fed 20 ms "
        f"μ-law chunks as a stream delivers them ({num(det['us_per_chunk'], 2)} µs a chunk; "
        f"target ≥ 1,000×: one core serves a thousand calls), {det['keys_heard']} of "
        f"{det['keys_pressed']} keys heard between stretches of speech-like noise. A whole "
        f"Twilio stream's core (`TwilioStream.receive`: JSON, base64, the detector, merging "
        f"`dtmf` messages with tones) runs at {num(stream['real_time_factor'])}× real time, "
        f"{num(stream['us_per_message'])} µs a message.",
    ]
    acc = f.get("accuracy")
    if acc is None:
        lines.append("- **Accuracy**: not measured (multimon-ng or sox missing).")
    else:
        n, ours, theirs = acc["tones"], acc["ours"], acc["multimon_ng"]
        lines.append(
            f"- **Accuracy** beside `multimon-ng` on the same Q.24 must-accept corpus (every "
            f"key; 40–100 ms; ±1.5 %; twist; levels; white noise at 20/10/6 dB): dtmf.py "
            f"detects **{100 * ours['hits'] / n:.1f} %** ({ours['hits']}/{n}), multimon-ng "
            f"{100 * theirs['hits'] / n:.1f} % ({theirs['hits']}/{n}); false digits "
            f"{ours['false']} and {theirs['false']}."
        )
    return "\n".join(lines)


def phone_mix(doc: dict[str, Any]) -> str:
    f = doc["figures"]
    return (
        f"- **Phone mix** (`bench/phone_mix.py`): the shared mix and 8 track-holders' mixes "
        f"of a busy night in {num(f['all_holders_us_per_frame'])} µs per 20 ms frame on one "
        f"core ({num(f['real_time_factor'])}× real time); one more holder's mix costs "
        f"{num(f['per_holder_mix_us'], 2)} µs, so one core renders "
        f"**{num(f['holder_mixes_real_time'])} holder mixes in real time** (target ≥ 200), "
        f"against {f['baseline_callers_per_core']:,} callers with a mixer each. "
        f"{f['cued_callers']} callers each cued once a second (together, a 0.35 s cue): "
        f"{num(f['cued_us_per_frame'])} µs a frame on average. {machine_line(doc)}"
    )


def backplane_cost(doc: dict[str, Any]) -> str:
    f = doc["figures"]
    settings = doc["settings"]
    parsers = [(key, label) for key, label in (("hiredis", "with hiredis"),
               ("python_parser", "with redis-py's own parser")) if key in f]  # fmt: skip
    shared = ", ".join(
        f"{label} **{num(f[key]['backplane_us_per_event'])} µs** "
        f"(publish → applied p50 {num(f[key]['applied_p50_ms'], 2)} ms)"
        for key, label in parsers
    )
    return (
        "- **Backplane** (`bench/backplane_cost.py`): what sharing channels through Redis "
        f"costs one relay in CPU an event, keypad digits at {settings['rate']:g} a second "
        "one at a time (each its own round trip: the costliest case), Redis's CPU apart, "
        f"beyond the in-memory fan-out's {num(f['in_memory']['us_per_event'])} µs: {shared}. "
        f"{machine_line(doc)}"
    )


def soak(doc: dict[str, Any]) -> str:
    f = doc["figures"]
    s = f["summary"]
    names = {"ws": "keypad", "twilio": "Twilio", "twilio-audio": "tones", "ari": "ARI"}
    p99 = ", ".join(
        f"{names.get(path, path)} {num(ms, 2)} ms" for path, ms in s["p99_ms"].items() if ms
    )
    held = all(s["checks"].values())
    whole = s["lost"] == 0 and s["duplicated"] == 0 and s["out_of_order"] == 0
    growth = (
        f", billboard RSS {num(s['rss_after_warmup_mib'])} MiB after warm-up and "
        f"{num(s['rss_end_mib'])} MiB at the end "
        f"(×{s['rss_end_mib'] / s['rss_after_warmup_mib']:.3f})"
        if s["rss_after_warmup_mib"]
        else ""
    )
    return (
        "- **Soak** (`bench/soak.py`; `--duration 1800` for the full 30 minutes, 60 s in CI): "
        "a real headless billboard and its relay while callers come and go on every path at "
        "once — keypads with sessions, Twilio `dtmf`, Twilio tones, Asterisk ARI (the fake "
        "server) and a seed publisher with acks — more callers than tracks. "
        f"A {doc['settings']['duration']:g}-second run: {s['presses']:,} presses from "
        f"{s['callers']} callers, "
        + (
            "every one arrived once and in order"
            if whole
            else f"{s['lost']} lost, {s['duplicated']} duplicated, {s['out_of_order']} out of order"
        )
        + f" (p99 press → subscriber: {p99}), {s['lost_acknowledged']} of "
        f"{s['acknowledged']} acknowledged presses lost, {s['notes']:,} notes with "
        f"{s['stuck']} stuck{growth}; "
        + (
            "every check held (errors, memory, stderr, privacy: no run of five digits of "
            "any number called from in the event log, the subscriber's events or stderr)"
            if held
            else "checks that failed: " + ", ".join(k for k, v in s["checks"].items() if not v)
        )
        + f". {machine_line(doc)}"
    )


def relay_memory(doc: dict[str, Any], unbounded: dict[str, Any] | None) -> str:
    f, s = doc["figures"], doc["settings"]
    rss = f["rss_mib"]
    text = (
        f"- **History memory** (`bench/relay_memory.py`): {s['holders']} token holders "
        f"send {f['holder_frame_bytes']:,}-byte frames (half to the installation's channel, "
        f"half over {s['channels']:,} channels) and {s['anonymous']} anonymous clients try to "
        f"open channels, for {num(f['flood_s'])} s: {num(f['offered_mib'])} MiB offered, RSS "
        f"{num(rss['idle'])} MiB idle, {num(rss['peak'])} MiB at the peak, history held "
        f"{num(f['history_mib'])} MiB within the {num(f['history_total_bytes_mib'])} MiB "
        f"bound; anonymous clients opened {f['anonymous_opened']} channels "
        f"({f['anonymous_attempts']:,} tries); `dialjam:control` "
        + ("still served" if f["control"] == "subscribed" else f"answered {f['control']!r}")
        + "."
    )
    if unbounded is not None:
        u = unbounded["figures"]
        text += (
            f" With the byte bounds lifted (`--history-bytes` and `--history-total-bytes` "
            f"1 TiB), RSS reached {num(u['rss_mib']['peak'])} MiB after "
            f"{num(u['offered_mib'])} MiB offered, growing with the traffic."
        )
    return text + f" {machine_line(doc)}"


# -- the README --------------------------------------------------------------------------


def sections(results: Path) -> dict[str, Callable[[], str]]:
    """Each section's name and how to make it from the files in `results`."""

    def doc(name: str) -> dict[str, Any]:
        path = results / f"{name}.json"
        if not path.exists():
            raise ReportError(f"{path} is missing: run the benchmark with --json {path}")
        loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return loaded

    def maybe(name: str) -> dict[str, Any] | None:
        return doc(name) if (results / f"{name}.json").exists() else None

    return {
        "relay_load": lambda: relay_load(doc("relay_load")),
        "engine_speed": lambda: engine_speed(doc("engine_speed")),
        "frame_time": lambda: frame_time(doc("frame_time")),
        "grid_timing": lambda: grid_timing(doc("grid_timing")),
        "dtmf_speed": lambda: dtmf_speed(doc("dtmf_speed")),
        "soak": lambda: soak(doc("soak")),
        "relay_memory": lambda: relay_memory(doc("relay_memory"), maybe("relay_memory-unbounded")),
        "waiting_line": lambda: waiting_line(doc("engine_speed")),
        "musicality": lambda: musicality(doc("musicality")),
        "soundfont": lambda: soundfont(doc("soundfont")),
        "phone_mix": lambda: phone_mix(doc("phone_mix")),
        "backplane_cost": lambda: backplane_cost(doc("backplane_cost")),
    }


def render(readme: str, results: Path = RESULTS) -> str:
    """`readme` with every marked section made again from `results`."""
    makers = sections(results)

    def replace(match: re.Match[str]) -> str:
        name = match.group(2)
        if name not in makers:
            raise ReportError(f"README section {name!r} has no maker in bench/report.py")
        return f"{match.group(1)}{wrap(makers[name]())}\n{match.group(4)}"

    return MARKER.sub(replace, readme)


def marked(readme: str) -> list[str]:
    """The names of the README's generated sections, in order."""
    return [m.group(2) for m in MARKER.finditer(readme)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Rewrite the README's figures from bench/results.")
    p.add_argument("--check", action="store_true", help="change nothing; exit 1 if stale")
    p.add_argument("--readme", type=Path, default=README)
    p.add_argument("--results", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    text = args.readme.read_text(encoding="utf-8")
    try:
        new = render(text, args.results)
    except ReportError as exc:
        print(f"report: {exc}", file=sys.stderr)
        return 2
    if new == text:
        print(f"{args.readme}: the figures match {args.results}")
        return 0
    if args.check:
        print(f"{args.readme}: the figures differ from {args.results}: run bench/report.py")
        return 1
    args.readme.write_text(new, encoding="utf-8")
    print(f"{args.readme}: {len(marked(new))} sections rewritten from {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
