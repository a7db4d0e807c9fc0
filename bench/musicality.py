#!/usr/bin/env python3
"""How musical is it? A seeded crowd of people-like callers played through the
billboard's engine, measured as a listener would judge it.

``.venv/bin/python bench/musicality.py`` builds the rehearsal crowd's human plan
(``relay.rehearsal.plan``, style ``human``: each caller at its own pace, phrases of
3–12 presses, pauses, favourite keys, motifs) for crowds of 1, 8 and 12 callers
(``--callers``) pressing ``--rate`` keys a second on average (1.4) for ``--duration``
seconds (90), started over ten seconds, with two seconds before the first and
``--tail`` seconds (20) after the last hangs up. It writes the plan as an event log
(the file ``--log-events`` writes) and plays it through the billboard of each checkout
— this one, and ``--compare CHECKOUT`` beside it (the version before a change to the
music) — at its default configuration, as ``make run`` does:

- the notes: ``billboard.engine.playback.play_events``, exactly what the live
  scheduler plays for those events (played twice: the two must be identical);
- the mix: ``python -m billboard --replay LOG --render WAV``, where the checkout has
  it (``--no-audio`` skips it).

It prints the measures of ``bench/music_metrics.py`` per crowd and checkout, with the
targets beside them, and saves them (``--json``, default
``bench/results/musicality.json``). Exit status 0 whatever the numbers (a
measurement); 1 when a checkout could not play.

    .venv/bin/python bench/musicality.py [--callers N ...] [--duration S] [--rate R]
                                         [--seed N] [--compare CHECKOUT]
                                         [--compare-rev REV] [--no-audio]

``make bench`` compares with ``--compare-rev`` the revision before the groove bed and
the instruments' roles (``MUSIC_BEFORE`` in the Makefile), checked out for the run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout

from bench import music_metrics  # noqa: E402
from bench.stats import load, write_result  # noqa: E402
from relay.contract.events import Digit, Join, Leave, to_data  # noqa: E402
from relay.contract.privacy import pseudonym  # noqa: E402
from relay.rehearsal.plan import CrowdOptions, plan_crowd  # noqa: E402

HEAD_S = 2.0  # before the first caller
RAMP_S = 10.0  # the callers' starts spread over this
KEY = b"musicality-bench"

# (measure, target, how it passes) as the README's table states them.
TARGETS: tuple[tuple[str, str], ...] = (
    ("kick on beat 1", "≥ 95 %"),
    ("semitone rub steps", "≤ 5 %"),
    ("notes at once (mean / max)", "mean ≤ 6"),
    ("registers", "bass ≤ 48, chords/pad ≤ 84, others ≤ 96"),
    ("velocities per pitched track (min)", "≥ 6"),
    ("L/R correlation", "≤ 0.9"),
    ("loudness", "−16 to −12 LUFS"),
    ("true peak", "≤ −1 dBTP"),
    ("bars nobody plays with beat + bass", "100 %"),
    ("in key", "100 % (not worse)"),
)

# Run inside a checkout's interpreter path: that checkout's engine plays the log.
CHILD = r"""
import json, sys
from billboard.config import BillboardConfig
from billboard.engine import Engine
from billboard.engine.harmony import SCALES
from billboard.engine.playback import play_events
from billboard.eventlog import read_events
from billboard.scheduler import LOOKAHEAD_S

log, until = sys.argv[1], float(sys.argv[2])
events = list(read_events(__import__("pathlib").Path(log)))
config = BillboardConfig().engine_config()

def play():
    engine = Engine(config, start=0.0)
    return engine, play_events(engine, events, until, LOOKAHEAD_S)

engine, notes = play()
_, again = play()
grid = Engine(config, start=0.0).grid
harmony = engine.harmony
out = {
    "notes": [
        [n.time, n.step, n.track, n.channel, n.note, getattr(n, "velocity", None)]
        for n in notes
    ],
    "identical_replay": notes == again,
    "press_steps": [grid.step_at(t) for t, e in events if type(e).__name__ == "Digit"],
    "first_step": grid.step_at(min(t for t, _ in events)),
    "last_step": grid.step_at(until) - 1,
    "scale_classes": [(harmony.key + i) % 12 for i in SCALES[harmony.scale]],
    "bpm": grid.bpm,
}
json.dump(out, sys.stdout)
"""


class _On:
    __slots__ = ("channel", "note", "step", "time", "track", "velocity")

    def __init__(self, row: list[Any]) -> None:
        self.time, self.step, self.track, self.channel, self.note, self.velocity = row


class _Off:
    __slots__ = ("channel", "note", "step", "time", "track")

    def __init__(self, row: list[Any]) -> None:
        self.time, self.step, self.track, self.channel, self.note, _ = row


def crowd_log(callers: int, duration: float, rate: float, seed: int, path: Path) -> float:
    """Write the crowd's events as an event log; returns when the session ends."""
    options = CrowdOptions(
        callers=callers, rate=rate, duration=duration, ramp=RAMP_S, style="human", check=False
    )
    timed: list[tuple[float, Any]] = []
    for plan in plan_crowd(options, seed):
        caller = pseudonym(f"+1555{seed:03d}{plan.index:04d}", KEY)
        began = HEAD_S + plan.start
        timed.append((began, Join(caller)))
        timed.extend((began + p.at, Digit(caller, p.key)) for p in plan.presses)
        timed.append((began + plan.hang_up, Leave(caller)))
    timed.sort(key=lambda item: item[0])
    with path.open("wb") as f:
        for t, event in timed:
            f.write(json.dumps({"t": round(t, 6), **to_data(event)}).encode() + b"\n")
    return max(t for t, _ in timed)


@contextlib.contextmanager
def worktree(rev: str, path: Path) -> Iterator[Path]:
    """A checkout of `rev` of this repository at `path`, removed afterwards."""
    add = ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), rev]
    done = subprocess.run(add, capture_output=True, timeout=120, check=False)
    if done.returncode != 0:
        raise SystemExit(f"cannot check out {rev}: {done.stderr.decode().strip()}")
    try:
        yield path
    finally:
        remove = ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)]
        subprocess.run(remove, capture_output=True, timeout=120, check=False)


def play(checkout: Path, log: Path, until: float) -> dict[str, Any]:
    """The notes `checkout`'s engine plays for `log`, and what the measures need."""
    env = {**os.environ, "PYTHONPATH": str(checkout), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(log), str(until)],
        capture_output=True,
        env=env,
        timeout=600,
        check=False,
        cwd=checkout,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{checkout} could not play the log:\n{done.stderr.decode()[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def render(
    checkout: Path, log: Path, until: float, wav: Path
) -> tuple[Any, int, dict[str, float]] | None:
    """The checkout's mix of `log` (its ``--render``), or None where it has none: the
    audio, its rate, and what the render said of itself (its speed; how often its
    master limiter worked, where it has one)."""
    if not (checkout / "billboard" / "render.py").exists():
        return None
    env = {
        **os.environ,
        "PYTHONPATH": str(checkout),
        "PYTHONDONTWRITEBYTECODE": "1",
        "SDL_VIDEODRIVER": "dummy",
        "SDL_AUDIODRIVER": "dummy",
    }
    command = [sys.executable, "-m", "billboard", "--replay", str(log), "--render", str(wav)]
    command += ["--duration", f"{until:.3f}"]
    done = subprocess.run(
        command, capture_output=True, env=env, timeout=900, check=False, cwd=checkout
    )
    if done.returncode != 0 or not wav.exists():
        raise RuntimeError(f"{checkout} could not render:\n{done.stderr.decode()[-2000:]}")
    with wave.open(str(wav), "rb") as w:
        rate, channels, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
        raw = w.readframes(w.getnframes())
    if width != 2:
        raise RuntimeError(f"{wav}: {8 * width}-bit samples; expected 16-bit PCM")
    audio = np.frombuffer(raw, dtype="<i2").reshape(-1, channels).astype(np.float32) / 32768
    said = done.stdout.decode(errors="replace")
    told: dict[str, float] = {}
    speed = re.search(r"\(([\d.]+)× real time\)", said)
    if speed:
        told["render_x_real_time"] = float(speed.group(1))
    limiter = re.search(r"limiter on ([\d.]+) % of the time \(at most -([\d.]+) dB\)", said)
    if limiter:
        told["limiter_pct"] = float(limiter.group(1))
        told["limiter_most_db"] = float(limiter.group(2))
    return audio, rate, told


def measure(checkout: Path, log: Path, until: float, audio: bool, work: Path) -> dict[str, Any]:
    began = time.perf_counter()
    played = play(checkout, log, until)
    notes = [(_On if row[5] is not None else _Off)(row) for row in played["notes"]]
    first, last = played["first_step"], played["last_step"]
    step_s = 60.0 / played["bpm"] / 4
    measures = music_metrics.note_measures(
        music_metrics.pair(notes),
        played["press_steps"],
        first,
        last,
        played["scale_classes"],
        (last - first + 1) * step_s,
    )
    measures["identical_replay"] = played["identical_replay"]
    if audio:
        mix = render(checkout, log, until, work / f"{checkout.name}-{log.stem}.wav")
        if mix is not None:
            measures.update(music_metrics.audio_measures(mix[0], mix[1]))
            measures.update(mix[2])
    measures["seconds_to_measure"] = time.perf_counter() - began
    return measures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--callers", type=int, nargs="+", default=[1, 8, 12])
    parser.add_argument("--duration", type=float, default=90.0)
    parser.add_argument("--rate", type=float, default=1.4)
    parser.add_argument("--tail", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--compare", type=Path, action="append", default=[])
    parser.add_argument(
        "--compare-rev",
        action="append",
        default=[],
        help="a git revision of this repository to check out beside this one and compare",
    )
    parser.add_argument("--no-audio", action="store_true")
    parser.add_argument("--json", type=Path, default=ROOT / "bench/results/musicality.json")
    args = parser.parse_args(argv)
    load_at_start = load()
    figures: dict[str, Any] = {}
    failed = False
    with tempfile.TemporaryDirectory(prefix="musicality-") as tmp, contextlib.ExitStack() as stack:
        work = Path(tmp)
        revs = [stack.enter_context(worktree(rev, work / f"rev-{rev}")) for rev in args.compare_rev]
        checkouts = [ROOT, *(path.resolve() for path in args.compare), *revs]
        labels = (
            ["this"] + [f"@{p.name}" for p in args.compare] + [f"@{r}" for r in args.compare_rev]
        )
        for callers in args.callers:
            log = work / f"crowd-{callers}.jsonl"
            until = crowd_log(callers, args.duration, args.rate, args.seed, log) + args.tail
            for label, checkout in zip(labels, checkouts, strict=True):
                key = f"{callers} callers, {label}"
                print(f"  {key} …", end="", flush=True)
                try:
                    figures[key] = measure(checkout, log, until, not args.no_audio, work)
                except (RuntimeError, subprocess.TimeoutExpired) as exc:
                    print(f" failed: {exc}")
                    failed = True
                    continue
                print(
                    f" {figures[key]['notes']} notes ({figures[key]['seconds_to_measure']:.1f} s)"
                )
    print(report(figures))
    settings = {
        "callers": args.callers,
        "duration_s": args.duration,
        "rate": args.rate,
        "seed": args.seed,
        "compare": [str(p) for p in args.compare] + args.compare_rev,
    }
    out = write_result(args.json, "bench/musicality.py", load_at_start, settings, figures)
    print(f"\nsaved {out}")
    return 1 if failed else 0


def report(figures: dict[str, Any]) -> str:
    """One table: a row per measure, a column per crowd and checkout, the target last."""
    columns = list(figures)
    rows = {key: music_metrics.summary(m) for key, m in figures.items()}
    names = list(next(iter(rows.values()), {}))
    targets = dict(TARGETS)
    header = ["measure", *columns, "target"]
    lines = [" | ".join(header), " | ".join("---" for _ in header)]
    for name in names:
        cells = [rows[c][name] for c in columns]
        lines.append(" | ".join([name, *cells, targets.get(name, "")]))
    replays = {c: figures[c].get("identical_replay") for c in columns}
    lines.append("")
    lines.append(
        "replay gives the same notes: " + ", ".join(f"{c} {v}" for c, v in replays.items())
    )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
