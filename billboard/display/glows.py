"""Lit windows, precomputed: for each colour and window size, the light a window
spills on the wall around it at every one of `GLOW_LEVELS` intensities, so a frame
only blits (halos with ``BLEND_ADD``). Each halo is kept cut to the part
that adds any light (the blur's fringe rounds to black), so a frame adds no more
pixels than show.

The spill reads as light on a wall rather than a glow around a sticker: it reaches
out half the window's smaller side, and three box blurs give it a soft, nearly
Gaussian falloff (a lamp's light on masonry has no edge).

A glow costs milliseconds to make (4 at 1080p, 13 at 2160p: a frame that makes one
misses its time), so they are made before the show where they fit `PREPARE_BYTES`,
and otherwise by a thread of their own as windows light up (`Glows.for_frame`): the
blurs, most of the work, run there without the GIL; until a glow is made its window
borrows the nearest size's glow of its colour. At most `KEPT_BYTES` of them are kept
(the least recently drawn dropped): a 3840×2160 building seen off-axis has 8 window
sizes even in buckets that grow with the windows, whose glows in 8 colours would take
670 MB (1.2 GB in 15 sizes with the buckets of 1080p)."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import pygame
import pygame.surfarray  # now: imported lazily by two threads at once, it broke

from billboard.engine.scene import Scene
from billboard.kept import Kept

from .palette import BLACK, RGB, rgb

HALO_BUCKET: Final = 8  # pixels: window sizes that share a halo
GLOW_LEVELS: Final = 24  # intensity steps of a glow: smooth enough for a 0.35 s decay
HALO_STRENGTH: Final = 200  # of 255: how much of a window's light spills around it
HALO_REACH: Final = 0.5  # of the window's smaller side: how far the spill reaches
PREPARE_BYTES: Final = 192 * 2**20  # at most this much of glows is made before a show
KEPT_BYTES: Final = 512 * 2**20  # at most this much of glows is kept
BUCKET_SIDE: Final = 64  # a window's smaller side per HALO_BUCKET of bucket (see `Glows.fit`)

log = logging.getLogger("dialjam.display")
Key = tuple[RGB, int, int]  # a glow's colour and bucket


@dataclass(slots=True)
class Glow:
    """A lit window's halo (added around it) at every level.

    A halo is centred on the window: `size` is its whole size, and each level's
    surface is the part of it that is not black at full level, at `offset` from its
    top left."""

    halos: list[pygame.Surface]
    offset: tuple[int, int]
    size: tuple[int, int]

    @property
    def bytes(self) -> int:
        """The memory its halos take."""
        return sum(h.get_width() * h.get_height() * h.get_bytesize() for h in self.halos)

    def halo_at(self, level: int, center: tuple[int, int]) -> tuple[pygame.Surface, pygame.Rect]:
        """Level `level`'s halo and where it goes for a window centred at `center`."""
        halo = self.halos[level]
        x = center[0] - self.size[0] // 2 + self.offset[0]
        y = center[1] - self.size[1] // 2 + self.offset[1]
        return halo, pygame.Rect((x, y), halo.get_size())


class Glows:
    """The glows made so far, by colour and window size, and the thread that makes
    the ones a frame asks for (see the module's docstring)."""

    def __init__(self, kept_bytes: int = KEPT_BYTES) -> None:
        self._glows: Kept[Key, Glow] = Kept(kept_bytes)
        self._largest = (1, 1)
        self._step = HALO_BUCKET
        self._lock = threading.Condition()
        self._wanted: deque[tuple[int, Key]] = deque()
        self._asked: set[Key] = set()
        self._generation = 0  # a glow made for a layout since forgotten is dropped
        self._maker: threading.Thread | None = None
        self._closed = False
        self.problem: str | None = None  # why the making thread stopped (said once)

    def clear(self) -> None:
        """Forget every glow (the window was laid out again)."""
        with self._lock:
            self._glows.clear()
            self._wanted.clear()
            self._asked.clear()
            self._generation += 1

    def close(self) -> None:
        """Stop the making thread (the display is closing)."""
        with self._lock:
            self._closed = True
            self._wanted.clear()
            self._lock.notify_all()
        if self._maker is not None:
            self._maker.join(timeout=5.0)

    @property
    def made(self) -> set[Key]:
        """The glows made so far: (colour, width, height) of the windows' size bucket."""
        with self._lock:
            return set(self._glows)

    @property
    def bytes(self) -> int:
        """The memory the glows kept take."""
        return self._glows.nbytes

    def fit(self, windows: Sequence[pygame.Rect]) -> None:
        """Forget the glows made for another building when `windows` differ in their
        largest size (the window was laid out again). Sizes are bucketed in steps that
        grow with the windows (`HALO_BUCKET` per `BUCKET_SIDE` pixels of the smallest
        side): the same look at 1080p and 2160p, half the glows at 2160p."""
        widest = max((r.width for r in windows), default=1)
        tallest = max((r.height for r in windows), default=1)
        smallest = min((min(r.width, r.height) for r in windows), default=1)
        step = HALO_BUCKET * max(1, round(smallest / BUCKET_SIDE))
        if (widest, tallest) != self._largest or step != self._step:
            self._largest = (widest, tallest)
            self._step = step
            self.clear()

    def bucket(self, width: int, height: int) -> tuple[int, int]:
        """The size the glow of a `width`×`height` window is made for (see `fit`)."""
        return bucket(width, height, self._step)

    def glow(self, color: RGB, width: int, height: int) -> Glow:
        """A `width`×`height` window lit in `color`, precomputed at every level, made
        now if it was not yet.

        Halos are made for sizes rounded up to buckets (a real building's windows
        differ by a few pixels; the blurred edge hides the difference): so a building
        of many window sizes costs a few surfaces, not hundreds."""
        bw, bh = self.bucket(width, height)
        key = (color, bw, bh)
        with self._lock:
            glow = self._glows.peek(key)
            generation = self._generation
        if glow is not None:
            return glow
        glow = make_glow(color, bw, bh)
        self._keep(key, glow, generation)
        return glow

    def for_frame(self, color: RGB, width: int, height: int) -> Glow | None:
        """The glow a frame draws for a `width`×`height` window lit in `color`, never
        made here: when it is not made yet, the making thread is asked for it and the
        nearest size's glow of the colour is lent meanwhile (None: none of the colour
        yet). A glow drawn is the last the memory cap drops."""
        bw, bh = self.bucket(width, height)
        key = (color, bw, bh)
        with self._lock:
            kept = self._glows.find(key)
            if kept is not None:
                return kept[0]
            if self.problem is None:
                self._ask(key)
                nearest = min(
                    (k for k in self._glows if k[0] == color),
                    key=lambda k: abs(k[1] - bw) + abs(k[2] - bh),
                    default=None,
                )
                return self._glows.peek(nearest) if nearest is not None else None
        return self.glow(color, width, height)  # no thread to make it: made now

    def _ask(self, key: Key) -> None:
        """(Holding the lock.) Have the making thread make `key`."""
        if key in self._asked or self._closed:
            return
        self._asked.add(key)
        self._wanted.append((self._generation, key))
        if self._maker is None:
            self._maker = threading.Thread(target=self._make, name="dialjam-glows", daemon=True)
            self._maker.start()
        self._lock.notify_all()

    def _make(self) -> None:
        """The making thread: the glows asked for, one at a time, until closed."""
        try:
            while True:
                with self._lock:
                    while not self._wanted and not self._closed:
                        self._lock.wait()
                    if self._closed:
                        return
                    generation, key = self._wanted.popleft()
                    if generation != self._generation:
                        continue
                glow = make_glow(*key)
                self._keep(key, glow, generation)
        except Exception as exc:  # said once; frames make their own glows from then on
            with self._lock:
                self.problem = f"glows: the making thread stopped ({exc!r}); made in frames"
            log.error("%s", self.problem)

    def _keep(self, key: Key, glow: Glow, generation: int) -> None:
        """Keep `glow` (made for layout `generation`), dropping the least recently
        drawn past the bytes kept."""
        with self._lock:
            self._asked.discard(key)
            if generation != self._generation or key in self._glows:
                return
            self._glows.put(key, glow, glow.bytes)

    def prepare(self, scene: Scene, windows: Sequence[pygame.Rect], *, quick: bool = False) -> None:
        """Make the glows of the tracks' colours now, with the background, rather than
        on a frame during the show (a glow costs milliseconds to make: 4 at 1080p, 13
        at 2160p, and a frame that makes one misses its time). A building of many
        window sizes (a mapped one) makes them all when they take at most
        `PREPARE_BYTES`, else as they light up; so does a `quick` one (calibrating:
        the mapping changes every frame)."""
        buckets = {self.bucket(r.width, r.height) for r in windows}
        colors = {rgb(view.color) for view in scene.tracks}
        if len(buckets) > 4:
            if quick:
                return
            levels = GLOW_LEVELS + 1
            each = sum(w * h * 4 * levels for w, h in (halo_size(*b, self._step) for b in buckets))
            if each * len(colors) > PREPARE_BYTES:
                return  # made as they light up
        for color in colors:
            for w, h in buckets:
                self.glow(color, w, h)


def make_glow(color: RGB, bw: int, bh: int) -> Glow:
    """The glow of a `bw`×`bh` window (a bucket's size) lit in `color`, at every level."""
    pad = _halo_pad(bw, bh)
    full = pygame.Surface((bw + 2 * pad, bh + 2 * pad)).convert()
    full.fill(BLACK)
    full.fill(color, (pad, pad, bw, bh))
    # Three box blurs approximate a Gaussian; done once per colour and window size.
    radius = max(1, pad // 3)
    for _ in range(3):
        full = pygame.transform.box_blur(full, radius)
    full.fill((HALO_STRENGTH,) * 3, special_flags=pygame.BLEND_MULT)
    # Cut to what the brightest level lights (a dimmer one lights no more).
    lit = _lit_area(full)
    halos = []
    for level in range(GLOW_LEVELS + 1):
        halo = full.subsurface(lit).copy()
        k = round(255 * level / GLOW_LEVELS)
        halo.fill((k, k, k), special_flags=pygame.BLEND_MULT)
        halos.append(halo)
    return Glow(halos, lit.topleft, full.get_size())


def _lit_area(surface: pygame.Surface) -> pygame.Rect:
    """The smallest rectangle holding every pixel of `surface` that is not black."""
    pixels: np.ndarray = pygame.surfarray.array3d(surface)
    lit = np.any(pixels != 0, axis=2)  # [x, y]
    cols, rows = np.flatnonzero(lit.any(axis=1)), np.flatnonzero(lit.any(axis=0))
    if cols.size == 0:
        return pygame.Rect(0, 0, 0, 0)
    return pygame.Rect(
        int(cols[0]), int(rows[0]), int(cols[-1] - cols[0]) + 1, int(rows[-1] - rows[0]) + 1
    )


def bucket(width: int, height: int, step: int = HALO_BUCKET) -> tuple[int, int]:
    """A window's size rounded up to `step` pixels: the size its halo is made for."""
    return -(-width // step) * step, -(-height // step) * step


def _halo_pad(bucket_w: int, bucket_h: int) -> int:
    return max(2, round(HALO_REACH * min(bucket_w, bucket_h)))


def halo_size(width: int, height: int, step: int = HALO_BUCKET) -> tuple[int, int]:
    """The size of the halo `Glows.glow` makes for a `width`×`height` window (centred
    on it) with buckets of `step` pixels, without making it."""
    bw, bh = bucket(width, height, step)
    pad = _halo_pad(bw, bh)
    return bw + 2 * pad, bh + 2 * pad
