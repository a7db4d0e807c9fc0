#!/usr/bin/env python3
"""Frame-time benchmark for the billboard's display (``billboard/display/``).

``python bench/frame_time.py`` draws real engine scenes and reports how long
`Display.draw` takes per frame: p50, p99, max and the draw-bound frame rate, at
1920×1080 and 3840×2160, in both layouts: the dashboard and the projection (a 6 × 14
building, corner-pinned off-axis, the whole output the building).

Where the frames go: by default SDL's dummy video driver (software rendering, no
screen; a frame is drawn but never sent anywhere). With ``--xvfb`` the bench starts
its own X server (Xvfb, at the largest size asked) and draws into a real X window,
as the projector's loop does: each frame is also sent to the X server (what a real
screen costs). With ``SDL_VIDEODRIVER=x11`` set it draws on the ``DISPLAY`` given.
The first line of each table says which.

The scenes are busy on purpose: 12 callers join (8 take the tracks, 4 wait in line)
and press digits at 100 events a second in simulated time, spread over all 8 tracks,
so the loops fill, dozens of windows are lit and decaying, and the scene changes
every frame. Every effect of the living facade is on in every frame: the beat's
pulse and the playheads (from the step), players' ripples and labels, and a join
moment and a section's wash held on (two callers' join times and the section's
start are kept a moment behind the scene's time). Simulated time advances 1/60 s per
frame, as on a 60 Hz projector, whatever the real drawing speed, so every run draws
the same scenes. The first `--warmup` frames (glows, text and layers being built)
are left out of the figures and reported on their own.

For each size and layout, runs one after the other, each for ``--seconds`` of
wall-clock time:

- ``display``       — `Display.draw(scene)`, what the projector shows;
- ``display+hud``   — the same with the operator's HUD (its numbers change every frame);
- ``idle``          — the idle show: nobody plays, colour waves over every window and
  the large QR code in front;
- ``inline``        — ``display`` again with the frame shown inline (drawn on the
  window's surface and flipped before `draw` returns, the single-threaded path), when
  the runs above show frames from the presenting thread: the ratio of the two in one
  run is what the thread gains, whatever else the machine is doing;

``floor`` — the static layer laid whole on the window and shown, nothing drawn over
  it: what any inline frame costs before its first light (the layer's copy, the flip
  and the X server's copy of the frame), the least a frame of that size can take this
  way on this machine;

and once, at the first size, ``naive``: a straightforward renderer drawn here for
comparison, which redraws everything each frame (building, windows, text, QR code
from segno, legend cells, glows made fresh as alpha surfaces), as one would before
caching anything.

Targets: ``display`` p99 ≤ 8 ms at 1920×1080 and ≤ 16 ms at 3840×2160. PASS/MISS is
printed; the exit code is 0 whatever the numbers (it is a measurement).

How a frame goes to the screen (``--present``): ``thread`` (the default here, with
an ``inline`` run beside it; the billboard takes it with ``DIALJAM_PRESENT=thread``)
draws each frame on a canvas while the last one is copied to the window and flipped
from a thread of its own (billboard/display/present.py); ``inline`` (the billboard's
default) draws on the window's surface and flips before `draw` returns. A run's time
is what `draw` took, including its wait for the frame before it to be on the screen,
so frames are never counted faster than they are shown.

Besides the wall-clock times (the target's), each run reports the drawing thread's
CPU time a frame (p50, p99: what other processes on a shared machine stretch less),
the presenting thread's CPU time a frame (its copies; on average), and, with
``--xvfb``, the X server's CPU time a frame (the copy of each frame into its screen,
done in the server's process, on average).

    python bench/frame_time.py [--xvfb] [--seconds S] [--sizes WxH,WxH]
                               [--layouts dashboard,projection] [--warmup N] [--json FILE]
                               [--present thread|inline]
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import random
import select
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

# Software rendering without a screen; set before pygame is imported.
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

import pygame

from bench.naive_display import NaiveDisplay
from billboard.display import Banner, Display, Hud
from billboard.engine import Digit, Engine, EngineConfig, Join
from billboard.engine.scene import Facade, Scene
from billboard.projection import Projection, even_grid

TARGETS_P99_MS = {(1920, 1080): 8.0, (3840, 2160): 16.0}
EVENTS_PER_S = 100.0
MIN_FRAMES = 20  # measured in each run, past the warm-up, even if `--seconds` ran out
FRAME_S = 1 / 60
BANNER = Banner("+1 555 010 0199", "https://dialjam.example.org/k/dialjam")
FACADE = Facade(6, 14)
# A building seen off-axis (wider at the foot, leaning right), windows above the
# ground floor's band, which the info region takes.
PROJECTION = Projection(
    ((0.08, 0.05), (0.93, 0.11), (0.96, 0.9), (0.04, 0.95)),
    even_grid(FACADE.floors, FACADE.bays, (0.0, 0.0, 1.0, 0.84)),
)
LAYOUTS = ("dashboard", "projection")


def every_effect(scene: Scene) -> Scene:
    """`scene` with a join moment and a section's wash under way (the engine makes
    them only now and then): the frame the billboard draws at its busiest."""
    tracks = list(scene.tracks)
    for i in (1, 5):  # two callers joined a second ago
        if tracks[i].caller is not None:
            tracks[i] = dataclasses.replace(tracks[i], since=scene.time - 1.0)
    return dataclasses.replace(
        scene, tracks=tuple(tracks), section="drop", section_step=max(1, scene.step - 1)
    )


def busy_scenes(seed: int = 7) -> Iterator[Scene]:
    """Scenes of 8 busy tracks and a waiting line, one per 1/60 s of simulated time,
    with digits arriving at `EVENTS_PER_S` (Poisson-like, evenly over the callers),
    every effect on (`every_effect`)."""
    engine = Engine(
        EngineConfig(facade=FACADE, attract_after_s=1e9, idle_s=1e9, turn_s=1e9), start=0.0
    )
    rng = random.Random(seed)
    for i in range(12):
        engine.handle(Join(f"c-bench{i:02d}", "twilio", f"…{10 + i}"), 0.0)
    now, next_event = 0.0, 0.0
    while True:
        now += FRAME_S
        while next_event <= now:
            caller = f"c-bench{rng.randrange(8):02d}"
            engine.handle(Digit(caller, rng.choice("0123456789*#")), next_event)
            next_event += rng.expovariate(EVENTS_PER_S)
        engine.advance(now, 0.1)
        engine.take_updates()
        yield every_effect(engine.scene(now))


def idle_scenes() -> Iterator[Scene]:
    """The idle show: nobody plays, the bed's parts light their regions at half level."""
    engine = Engine(EngineConfig(facade=FACADE, attract_after_s=0.0), start=0.0)
    now = 0.0
    while True:
        now += FRAME_S
        engine.advance(now, 0.1)
        engine.take_updates()
        yield engine.scene(now)


@dataclass
class Result:
    """One run's frames: wall-clock times (the target's), the drawing thread's CPU
    times (what the machine's other work does not stretch), the presenting thread's
    and the X server's CPU time a frame, on average (None: no such thread, or no X
    server of the bench's own)."""

    name: str
    times_ms: list[float]
    warmup_ms: list[float]
    cpu_ms: list[float]
    server_ms: float | None = None
    present_ms: float | None = None

    def percentile(self, p: float, times: list[float] | None = None) -> float:
        ordered = sorted(self.times_ms if times is None else times)
        return ordered[max(0, math.ceil(p * len(ordered)) - 1)]

    def row(self) -> str:
        if not self.times_ms:
            return f"{self.name:<14}{0:>8}  (no frame after the warm-up: too slow to measure)"
        t = self.times_ms
        fps = 1000.0 * len(t) / sum(t)
        server = "—" if self.server_ms is None else f"{self.server_ms:.2f}"
        present = "—" if self.present_ms is None else f"{self.present_ms:.2f}"
        return (
            f"{self.name:<14}{len(t):>8}{statistics.median(t):>9.2f}{self.percentile(0.99):>9.2f}"
            f"{max(t):>9.2f}{fps:>9.0f}{self.warmup_ms[0]:>10.1f}"
            f"{statistics.median(self.cpu_ms):>9.2f}{self.percentile(0.99, self.cpu_ms):>9.2f}"
            f"{present:>9}{server:>9}"
        )


def server_cpu_s() -> float | None:
    """The CPU time the bench's own X server has used so far (None: none)."""
    pid = os.environ.get("DIALJAM_BENCH_XVFB", "")
    if not pid.isdigit():
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def measure(
    name: str,
    draw: Callable[[Scene], None],
    seconds: float,
    warmup: int,
    scenes: Iterator[Scene] | None = None,
    display: Display | None = None,
) -> Result:
    scenes = scenes if scenes is not None else busy_scenes()
    times: list[float] = []
    warm: list[float] = []
    cpu: list[float] = []
    deadline = time.perf_counter() + seconds
    server_start: float | None = None
    present_start: float | None = None
    # At least MIN_FRAMES after the warm-up, however long they take (a slow size on a
    # busy machine would otherwise leave nothing to report).
    while time.perf_counter() < deadline or len(times) < MIN_FRAMES:
        scene = next(scenes)  # built outside the timed part: we measure drawing
        pygame.event.pump()  # as the billboard's loop does, so SDL stays responsive
        if len(warm) == warmup and server_start is None:
            server_start = server_cpu_s()
            present_start = present_cpu_s(display)
        start, start_cpu = time.perf_counter(), time.thread_time()
        draw(scene)
        elapsed = (time.perf_counter() - start) * 1000.0
        if len(warm) < warmup:
            warm.append(elapsed)
        else:
            times.append(elapsed)
            cpu.append((time.thread_time() - start_cpu) * 1000.0)
    if display is not None:
        display.surface  # noqa: B018 (waits until the last frame is on the screen)
    server_end, present_end = server_cpu_s(), present_cpu_s(display)
    server_ms = present_ms = None
    if server_start is not None and server_end is not None and times:
        server_ms = (server_end - server_start) * 1000.0 / len(times)
    if present_start is not None and present_end is not None and times:
        present_ms = (present_end - present_start) * 1000.0 / len(times)
    return Result(name, times, warm, cpu, server_ms, present_ms)


def present_cpu_s(display: Display | None) -> float | None:
    """The CPU time `display`'s presenting thread has used so far (None: none)."""
    presenter = display.presenter if display is not None else None
    return presenter.cpu_s if presenter is not None else None


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--seconds", type=float, default=5.0, help="wall-clock time per run (5)")
    p.add_argument(
        "--sizes", default="1920x1080,3840x2160", help="window sizes WxH,… (1920x1080,3840x2160)"
    )
    p.add_argument(
        "--layouts", default=",".join(LAYOUTS), help="dashboard, projection or both (both)"
    )
    p.add_argument("--warmup", type=int, default=30, help="frames left out at the start (30)")
    p.add_argument("--json", metavar="FILE", help="also save the figures as JSON")
    p.add_argument(
        "--xvfb",
        action="store_true",
        help="draw into a real X window on an Xvfb of the bench's own (apt-get install xvfb)",
    )
    p.add_argument(
        "--present",
        choices=("thread", "inline"),
        default="thread",
        help="frames shown from a thread of their own (DIALJAM_PRESENT=thread), "
        "with an inline run beside for the ratio (thread); or inline only",
    )
    return p.parse_args(argv)


def start_xvfb(width: int, height: int) -> tuple[subprocess.Popen[bytes], str]:
    """An Xvfb of `width`×`height` on a free display number (it picks one and says
    which when ready); the server and its DISPLAY."""
    binary = shutil.which("Xvfb")
    if binary is None:
        raise SystemExit("--xvfb needs Xvfb: apt-get install --no-install-recommends xvfb")
    proc = subprocess.Popen(
        [binary, "-displayfd", "1", "-screen", "0", f"{width}x{height}x24", "-nolisten", "tcp"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 30)
    number = proc.stdout.readline().decode().strip() if ready else ""
    if not number.isdigit():
        proc.kill()
        proc.wait()
        raise SystemExit("Xvfb did not start")
    return proc, f":{number}"


def sdl_driver() -> str:
    """The driver as the results say it: "dummy", "x11 (Xvfb)" or "x11"."""
    driver = os.environ["SDL_VIDEODRIVER"]
    return f"{driver} (Xvfb)" if os.environ.get("DIALJAM_BENCH_XVFB") else driver


def present_said(present: str) -> str:
    """How the runs' frames reach the screen, as the tables say it."""
    if present == "thread":
        return "from a presenting thread (inline: the single-threaded path, for the ratio)"
    return "inline (drawn on the window's surface, flipped before draw returns)"


def video_said() -> str:
    """Which SDL video driver the frames go to, and where."""
    driver = os.environ["SDL_VIDEODRIVER"]
    if driver == "dummy":
        return "SDL dummy driver (no screen: frames are not sent anywhere)"
    where = os.environ.get("DISPLAY", "?")
    xvfb = " on Xvfb" if os.environ.get("DIALJAM_BENCH_XVFB") else ""
    return f"SDL {driver} driver{xvfb} (DISPLAY={where}, each frame sent to the X server)"


def open_display(
    size: tuple[int, int], projection: Projection | None, present: Literal["thread", "inline"]
) -> Display:
    """A window of `size` drawing `projection` (None: the dashboard), tried three times:
    on a shared machine the bench's own X server has now and then refused a new
    connection for a moment (SDL: "x11 not available"), said here when it happens."""
    for attempt in range(3):
        try:
            return Display(
                size=size, fullscreen=False, banner=BANNER, projection=projection, present=present
            )
        except OSError as exc:
            if attempt == 2:
                raise
            print(f"(opening the window again in a second: {exc})", file=sys.stderr)
            time.sleep(1.0)
    raise AssertionError("unreachable")


def run_layout(
    size: tuple[int, int],
    layout: str,
    seconds: float,
    warmup: int,
    naive: bool,
    present: str = "thread",
) -> list[Result]:
    """The runs of one size and layout (and the naive baseline, when asked)."""
    projection = PROJECTION if layout == "projection" else None
    # A window, not full screen (the bench's X screen is the largest size asked), that
    # nobody resizes: its surface stays put under the presenting thread's copies.
    display = open_display(size, projection, "thread" if present == "thread" else "inline")
    hud = Hud(
        fps=60.0,
        frame_ms=2.0,
        relay="connected",
        latency_ms=2.1,
        callers=12,
        midi_port="FluidSynth",
    )
    frame = [0]

    def with_hud(scene: Scene) -> None:
        frame[0] += 1  # the HUD's numbers change every frame, as they do live
        changing = Hud(
            59.0 + frame[0] % 20 / 10,
            1.0 + frame[0] % 37 / 10,
            hud.relay,
            2.0 + frame[0] % 9 / 10,
            hud.callers,
            hud.midi_port,
        )
        display.draw(scene, hud=changing)

    results = [
        measure("display", display.draw, seconds, warmup, display=display),
        measure("display+hud", with_hud, seconds, warmup, display=display),
        measure("idle", display.draw, seconds, warmup, idle_scenes(), display=display),
    ]
    if naive:
        baseline = NaiveDisplay(display.surface, BANNER)
        results.append(measure("naive", baseline.draw, seconds, warmup))
    if present == "thread":
        display.close()
    if present == "thread":  # the single-threaded path in the same run, for the ratio
        inline = open_display(size, projection, "inline")
        results.append(measure("inline", inline.draw, seconds, warmup))
        results.append(floor(inline, seconds, warmup))
        inline.close()
    else:
        results.append(floor(display, seconds, warmup))
    display.close()
    return results


def floor(display: Display, seconds: float, warmup: int) -> Result:
    """The ``floor`` run: each frame only the static layer laid whole on the window and
    shown, nothing drawn over it: what any frame drawn inline costs before its first
    light (the copy of the layer, the flip, the X server's copy), on `display` (inline)."""
    display.draw(next(busy_scenes()))
    layer, window = display.first_layer, display.surface
    assert layer is not None

    def lay_and_show(scene: Scene) -> None:
        window.blit(layer, (0, 0))
        pygame.display.flip()

    return measure("floor", lay_and_show, seconds, warmup)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = [tuple(int(v) for v in size.lower().split("x")) for size in args.sizes.split(",")]
    xvfb = None
    if args.xvfb:
        xvfb, display = start_xvfb(max(w for w, _ in sizes), max(h for _, h in sizes))
        os.environ.update(SDL_VIDEODRIVER="x11", DISPLAY=display, DIALJAM_BENCH_XVFB=str(xvfb.pid))
    try:
        return run(args, sizes)
    finally:
        if xvfb is not None:
            xvfb.terminate()
            xvfb.wait()


def run(args: argparse.Namespace, sizes: list[tuple[int, ...]]) -> int:
    from bench import stats  # beside the run, not among the display's imports

    load_at_start = stats.load()
    layouts = [name.strip() for name in args.layouts.split(",") if name.strip()]
    for name in layouts:
        if name not in LAYOUTS:
            raise SystemExit(f"unknown layout {name!r}: dashboard or projection")
    cpu = os.cpu_count()
    runs: dict[str, dict[str, Result]] = {}
    verdicts = []
    gains: dict[str, dict[str, float]] = {}
    speedup = float("nan")
    for width, height in sizes:
        for layout in layouts:
            first = not runs
            results = run_layout(
                (width, height), layout, args.seconds, args.warmup, first, args.present
            )
            key = f"{width}x{height} {layout}"
            runs[key] = {r.name: r for r in results}
            # Other processes on the machine show first in the tail (p99, max): say how busy.
            load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
            print(
                f"\nDisplay.draw at {width}×{height}, {layout} layout, {video_said()}, "
                "8 busy tracks + 4 waiting, "
                f"{EVENTS_PER_S:.0f} events/s, every effect on, {args.seconds:g} s per run, "
                f"{cpu} CPU(s), load average {load:.2f}, pygame-ce {pygame.version.ver}, "
                f"frames shown {present_said(args.present)}"
            )
            print(
                f"{'run':<14}{'frames':>8}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'fps':>9}"
                f"{'first ms':>10}{'cpu p50':>9}{'cpu p99':>9}{'show ms':>9}{'X ms':>9}"
            )
            for result in results:
                print(result.row())
            target = TARGETS_P99_MS.get((width, height))
            p99 = results[0].percentile(0.99)
            if target is not None and results[0].times_ms:
                verdict = "PASS" if p99 <= target else "MISS"
                verdicts.append(f"{key}: p99 {p99:.2f} ms ≤ {target:g} ms: {verdict}")
            named = runs[key]
            if "inline" in named and named["inline"].times_ms and named["display"].times_ms:
                shown, inline = named["display"], named["inline"]
                gains[key] = {
                    "p50": statistics.median(inline.times_ms) / statistics.median(shown.times_ms),
                    "p99": inline.percentile(0.99) / shown.percentile(0.99),
                }
            if first and "naive" in named:
                naive = named["naive"]
                speedup = statistics.median(naive.times_ms) / statistics.median(results[0].times_ms)
    print()
    for line in verdicts:
        print(f"target {line}")
    for key, gain in gains.items():
        print(
            f"{key}: the presenting thread's frames {gain['p50']:.2f}× (p50), "
            f"{gain['p99']:.2f}× (p99) as fast as inline ones, in the same run"
        )
    print(f"median {speedup:.1f}× faster than naive (at the first size and layout)")
    if args.json:
        figures: dict[str, object] = {
            "runs": {
                key: {
                    r.name: {
                        "frames": len(r.times_ms),
                        "p50_ms": statistics.median(r.times_ms),
                        "p99_ms": r.percentile(0.99),
                        "max_ms": max(r.times_ms),
                        "first_ms": r.warmup_ms[0],
                        "cpu_p50_ms": statistics.median(r.cpu_ms),
                        "cpu_p99_ms": r.percentile(0.99, r.cpu_ms),
                        "present_cpu_ms": r.present_ms,
                        "x_server_ms": r.server_ms,
                    }
                    for r in results.values()
                }
                for key, results in runs.items()
            },
            "target_p99_ms": {f"{w}x{h}": t for (w, h), t in TARGETS_P99_MS.items()},
            "naive_median_ratio": speedup,
            "thread_over_inline": gains,
        }
        settings = {
            "seconds": args.seconds,
            "sizes": args.sizes,
            "layouts": args.layouts,
            "warmup": args.warmup,
            "present": args.present,
        }
        stats.write_result(
            args.json,
            "frame_time",
            load_at_start,
            settings,
            figures,
            sdl_driver=sdl_driver(),
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
