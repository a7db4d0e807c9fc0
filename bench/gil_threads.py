#!/usr/bin/env python3
"""Which pixel work two threads can share: the measurement behind
billboard/display/present.py.

Two threads each do the same work on their own half of one 3840×2160 surface (a
subsurface each, as two bands of a frame would be), against one thread doing both
halves in turn: the bench prints how much faster the two threads were (the one
thread's wall-clock time over theirs), which depends on how many cores the machine's
other processes leave free. So it also prints whether the call lets the GIL go
(``other thread``): while one thread makes the call, a second thread spins in Python
(it needs the GIL for every step), and the bench reads the CPU time that thread got,
as a share of the calls' wall-clock time: about 0 % when the call holds the GIL,
whatever the machine's load, and up to 100 % when it lets it go and a core is free.

- ``blit``        — `Surface.blit` of an opaque surface (the static layer's copy);
- ``blit add``    — `Surface.blit` with ``BLEND_ADD`` (a window's glow);
- ``fill``        — `Surface.fill`;
- ``polygon``     — `pygame.draw.polygon` (a mapped window's light), 400 per half;
- ``smoothscale`` — `pygame.transform.smoothscale` to the same size (a memcpy);
- ``memmove``     — `ctypes.memmove` of the half's bytes (what the presenter copies with).

    python bench/gil_threads.py [--rounds N]
"""

from __future__ import annotations

import argparse
import ctypes
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import pygame

SIZE = (3840, 2160)
Work = Callable[[int], object]  # the work on half 0 or 1 (what it returns is ignored)


def kinds(screen: pygame.Surface) -> dict[str, Work]:
    w, h = SIZE[0], SIZE[1] // 2
    halves = [screen.subsurface((0, y, w, h)) for y in (0, h)]
    sources = [pygame.Surface((w, h)).convert() for _ in halves]
    for source in sources:
        source.fill((10, 20, 30))
    copies = [pygame.Surface((w, h)).convert() for _ in halves]
    step = w // 20

    def polygons(i: int) -> None:
        for k in range(400):
            x, y = (k % 20) * step, (k // 20) * (h // 20)
            pygame.draw.polygon(halves[i], (90, 60, 30), [(x, y), (x + step, y + 9), (x, y + 40)])

    def memmove(i: int) -> None:
        size = copies[i].get_pitch() * h
        ctypes.memmove(copies[i]._pixels_address, sources[i]._pixels_address, size)

    return {
        "blit": lambda i: halves[i].blit(sources[i], (0, 0)),
        "blit add": lambda i: halves[i].blit(sources[i], (0, 0), special_flags=pygame.BLEND_ADD),
        "fill": lambda i: halves[i].fill((40, 50, 60)),
        "polygon": polygons,
        "smoothscale": lambda i: pygame.transform.smoothscale(sources[i], (w, h), copies[i]),
        "memmove": memmove,
    }


def let_go(work: Work, rounds: int) -> float:
    """The CPU time a thread spinning in Python got while `work` ran, as a share of
    the time `work` took (see the module's docstring)."""
    during = threading.Event()  # set while a call runs: the spinner spins
    done = threading.Event()

    def spin() -> None:
        while not done.is_set():
            during.wait()
            while during.is_set() and not done.is_set():
                pass

    spinner = threading.Thread(target=spin)
    interval = sys.getswitchinterval()
    # A switch interval longer than a call: the spinner gets the GIL within a call only
    # when the call lets it go (the caller then waits for it back, up to the interval,
    # which counts too: such a call scores near 100 % on a free core).
    sys.setswitchinterval(0.05)
    spinner.start()
    clock = time.pthread_getcpuclockid(spinner.ident or 0)
    got = took = 0.0
    try:
        for _ in range(rounds):
            during.set()
            cpu, start = time.clock_gettime(clock), time.perf_counter()
            work(0)
            took += time.perf_counter() - start
            got += time.clock_gettime(clock) - cpu
            during.clear()
            time.sleep(0.002)  # the spinner settles back into its wait
    finally:
        done.set()
        during.set()  # out of its wait, to see it is done
        spinner.join()
        sys.setswitchinterval(interval)
    return got / took


def one_thread(work: Work, rounds: int) -> float:
    start = time.perf_counter()
    for _ in range(rounds):
        work(0)
        work(1)
    return time.perf_counter() - start


def two_threads(work: Work, rounds: int) -> float:
    """Their wall-clock time."""
    ready = threading.Barrier(3)

    def run(i: int) -> None:
        ready.wait()
        for _ in range(rounds):
            work(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in (0, 1)]
    for thread in threads:
        thread.start()
    ready.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--rounds", type=int, default=30, help="times each half is done (30)")
    args = p.parse_args(argv)
    pygame.display.init()
    screen = pygame.display.set_mode(SIZE)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"Two threads on two halves of a {SIZE[0]}×{SIZE[1]} surface against one thread "
        f"doing both, {args.rounds} rounds, {os.cpu_count()} CPU(s), load average {load:.2f}, "
        f"pygame-ce {pygame.version.ver}"
    )
    print(
        f"{'work':<13}{'1 thread ms':>13}{'2 threads ms':>14}{'speed-up':>10}{'other thread':>14}"
    )
    for name, work in kinds(screen).items():
        work(0), work(1)  # warm: blit maps set up, pages touched
        single = one_thread(work, args.rounds)
        wall = two_threads(work, args.rounds)
        other = let_go(work, args.rounds)
        print(
            f"{name:<13}{single * 1000 / args.rounds:>13.2f}{wall * 1000 / args.rounds:>14.2f}"
            f"{single / wall:>9.2f}×{other:>13.0%}"
        )
    pygame.display.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
