"""Frames shown from a thread of their own, so the drawing thread draws the next frame
while the last one goes to the screen: the machine's second core takes the copies and
the wait for the X server.

Why not two threads drawing two bands of a frame: pygame-ce holds the GIL in every
blit and fill (its ``Py_BEGIN_ALLOW_THREADS`` around ``SDL_BlitSurface`` are
commented out in ``src_c/surface.c``), so such threads take turns, no faster than
one. What lets the GIL go is ``pygame.display.flip()`` (the copy to the X server and
the wait for it) and a `ctypes` call (``ctypes.memmove``), so a `Presenter` runs
those on its thread:

- a frame is drawn on one of two canvases while the other is being shown;
- `show` hands the canvas over and returns at once: the thread copies it into the
  window's surface, flips, and lays the frame's first layer (the static background,
  whole-screen) on that canvas again, ready for the frame after next, so the drawing
  thread starts from it without copying it;
- the next `show` waits until the last one is on the screen: frames are shown in
  the order drawn, the drawing never more than one frame ahead.

The two canvases are halves of one surface: SDL keeps each source surface's blit
set up for the last surface it was blitted to, and pygame blits to a subsurface
through its owner, so the drawing thread blits to one surface whichever canvas it
draws on (two surfaces taking turns cost every blit a new set-up: measured, twice
the drawing time). The thread copies pixels by address rather than through pygame,
which would lock that owner and fail the drawing thread's next blit.

Nothing but the thread touches the window's surface between a `show` and the end of
its flip: `wait` first, to read or save it.

What it buys is little, and only with a core to spare: the flip's wait (the X
server's copy, 1.5–2 ms a frame at 1080p) and the static layer's copy leave the
drawing thread, but the thread adds a copy of its own (6 ms at 2160p), competes for
memory bandwidth and takes the GIL back three times a frame. On the shared 2-core
machine it was measured on (load 2–5), its 1080p frames were steadier than inline
ones in most runs (projection p99 1.4–2.5× lower), its 2160p frames slower (p50
0.3–0.8× as fast), all far from the targets; so the billboard takes it only when
asked (`Display`'s ``present``) until bench/frame_time.py, which prints both in one
run, says otherwise on the projector itself.
"""

from __future__ import annotations

import ctypes
import sys
import threading
import time
from typing import Final

import pygame

# How long a thread waiting for the GIL waits before the holder is asked to let it go
# (CPython's default is 5 ms). The presenting thread takes the GIL back after each
# copy and the flip, three times a frame, while the drawing thread holds it: at 5 ms
# each, a frame's showing took longer than drawing it (measured: bench/frame_time.py,
# 1080p projection p99 31.8 ms at 5 ms, 15.2 ms at 0.5 ms).
SWITCH_INTERVAL_S: Final = 0.001


class Presenter:
    """Shows the frames drawn on its canvases on `window` (the display's surface),
    from a thread of its own (see the module's docstring)."""

    def __init__(self, window: pygame.Surface) -> None:
        self.window = window
        w, h = window.get_size()
        self._both = pygame.Surface((w, 2 * h)).convert(window)
        self._canvases = [self._both.subsurface((0, y, w, h)) for y in (0, h)]
        self._holds: list[pygame.Surface | None] = [None, None]
        self._next = 0  # the canvas the next frame is drawn on
        self._job: tuple[int, pygame.Surface | None] | None = None
        self._busy = False
        self._closed = False
        self._error: BaseException | None = None
        self._cpu_s = 0.0
        self._cond = threading.Condition()
        self._interval = sys.getswitchinterval()
        sys.setswitchinterval(min(self._interval, SWITCH_INTERVAL_S))
        self._thread = threading.Thread(target=self._run, name="dialjam-present", daemon=True)
        self._thread.start()

    @property
    def canvas(self) -> pygame.Surface:
        """The surface the next frame is drawn on (never the one being shown)."""
        return self._canvases[self._next]

    def holds(self, layer: pygame.Surface) -> bool:
        """The canvas holds `layer` whole already (laid there after its last frame was
        shown), so drawing on it may start over it."""
        return self._holds[self._next] is layer

    def show(self, first_layer: pygame.Surface | None) -> None:
        """Show the canvas drawn on (once the frame before it is shown), then lay
        `first_layer` (the static layer the frame began with, whole-screen) on it
        again for a later frame; returns before the frame is on the screen. Raises
        what the thread met showing the last frame (pygame.error).

        When the last frame was not shown yet (the thread is the slower of the two),
        the layer is not laid: the drawing thread lays it itself two frames later,
        taking that copy off the thread until it keeps up again."""
        with self._cond:
            behind = self._busy
            self._settle()
            index = self._next
            layer = None if behind else first_layer
            if layer is not None and not _copyable(layer, self.window):
                layer = None
            self._holds[index] = None
            self._job = (index, layer)
            self._busy = True
            self._next = 1 - index
            self._cond.notify_all()

    def wait(self) -> None:
        """Return once every frame handed over is on the screen (raises what the
        thread met, as `show` does)."""
        with self._cond:
            self._settle()

    @property
    def cpu_s(self) -> float:
        """The CPU time the presenting thread has used so far (seconds)."""
        return self._cpu_s

    def close(self) -> None:
        """Let what was handed over reach the screen, then stop the thread."""
        with self._cond:
            while self._busy and self._error is None:
                self._cond.wait()
            self._closed = True
            self._cond.notify_all()
        self._thread.join()
        sys.setswitchinterval(self._interval)

    def _settle(self) -> None:
        """(Holding the lock.) Wait until the thread is idle; raise what it met."""
        while self._busy and self._error is None:
            self._cond.wait()
        if self._error is not None:
            error, self._error = self._error, None
            self._busy = False
            raise error

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._job is None and not self._closed:
                    self._cond.wait()
                if self._job is None:
                    return
                index, layer = self._job
                self._job = None
            start = time.thread_time()
            canvas = self._canvases[index]
            try:
                copy_pixels(canvas, self.window)
                pygame.display.flip()
                if layer is not None:
                    copy_pixels(layer, canvas)
            except Exception as exc:  # handed to the drawing thread, raised there
                with self._cond:
                    self._error = exc
                    self._cond.notify_all()
                continue
            with self._cond:
                self._holds[index] = layer
                self._cpu_s += time.thread_time() - start
                self._busy = False
                self._cond.notify_all()


def _copyable(source: pygame.Surface, target: pygame.Surface) -> bool:
    """`source`'s pixels can be copied byte for byte onto `target`."""
    return (
        source.get_size() == target.get_size()
        and source.get_bytesize() == target.get_bytesize()
        and source.get_masks() == target.get_masks()
    )


def copy_pixels(source: pygame.Surface, target: pygame.Surface) -> None:
    """`source`'s pixels onto `target` (same size and format), by address, without
    holding the GIL and without locking either surface (see the module's docstring).
    Raises ValueError when they differ."""
    if not _copyable(source, target):
        raise ValueError("copy_pixels: the surfaces differ in size or format")
    height = source.get_height()
    row = source.get_width() * source.get_bytesize()
    src, dst = source._pixels_address, target._pixels_address
    src_pitch, dst_pitch = source.get_pitch(), target.get_pitch()
    if src_pitch == dst_pitch == row:
        ctypes.memmove(dst, src, row * height)
        return
    for y in range(height):
        ctypes.memmove(dst + y * dst_pitch, src + y * src_pitch, row)
