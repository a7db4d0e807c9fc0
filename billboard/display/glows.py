"""Lit windows, precomputed: for each colour and window size, the light a window
spills on the wall around it at every one of `GLOW_LEVELS` intensities, so a frame
only blits (halos with ``BLEND_ADD``). Each halo is kept cut to the part
that adds any light (the blur's fringe rounds to black), so a frame adds no more
pixels than show.

The spill reads as light on a wall rather than a glow around a sticker: it reaches
out half the window's smaller side, and three box blurs give it a soft, nearly
Gaussian falloff (a lamp's light on masonry has no edge)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import pygame

from billboard.engine.scene import Scene

from .palette import BLACK, RGB, rgb

HALO_BUCKET: Final = 8  # pixels: window sizes that share a halo
GLOW_LEVELS: Final = 24  # intensity steps of a glow: smooth enough for a 0.35 s decay
HALO_STRENGTH: Final = 200  # of 255: how much of a window's light spills around it
HALO_REACH: Final = 0.5  # of the window's smaller side: how far the spill reaches
PREPARE_BYTES: Final = 192 * 2**20  # at most this much of glows is made before a show


@dataclass(slots=True)
class Glow:
    """A lit window's halo (added around it) at every level.

    A halo is centred on the window: `size` is its whole size, and each level's
    surface is the part of it that is not black at full level, at `offset` from its
    top left."""

    halos: list[pygame.Surface]
    offset: tuple[int, int]
    size: tuple[int, int]

    def halo_at(self, level: int, center: tuple[int, int]) -> tuple[pygame.Surface, pygame.Rect]:
        """Level `level`'s halo and where it goes for a window centred at `center`."""
        halo = self.halos[level]
        x = center[0] - self.size[0] // 2 + self.offset[0]
        y = center[1] - self.size[1] // 2 + self.offset[1]
        return halo, pygame.Rect((x, y), halo.get_size())


class Glows:
    """The glows made so far, by colour and window size."""

    def __init__(self) -> None:
        self._glows: dict[tuple[RGB, int, int], Glow] = {}
        self._largest = (1, 1)

    def clear(self) -> None:
        """Forget every glow (the window was laid out again)."""
        self._glows.clear()

    @property
    def made(self) -> set[tuple[RGB, int, int]]:
        """The glows made so far: (colour, width, height) of the windows' size bucket."""
        return set(self._glows)

    def fit(self, windows: Sequence[pygame.Rect]) -> None:
        """Forget the glows made for another building when `windows` differ in their
        largest size (the window was laid out again)."""
        widest = max((r.width for r in windows), default=1)
        tallest = max((r.height for r in windows), default=1)
        if (widest, tallest) != self._largest:
            self._largest = (widest, tallest)
            self.clear()

    def glow(self, color: RGB, width: int, height: int) -> Glow:
        """A `width`×`height` window lit in `color`, precomputed at every level.

        Halos are made for sizes rounded up to `HALO_BUCKET` pixels (a real building's
        windows differ by a few pixels; the blurred edge hides the difference): so a
        building of many window sizes costs a few surfaces, not hundreds."""
        bw, bh = bucket(width, height)
        key = (color, bw, bh)
        glow = self._glows.get(key)
        if glow is not None:
            return glow
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
        glow = Glow(halos, lit.topleft, full.get_size())
        self._glows[key] = glow
        return glow

    def prepare(self, scene: Scene, windows: Sequence[pygame.Rect], *, quick: bool = False) -> None:
        """Make the glows of the tracks' colours now, with the background, rather than
        on a frame during the show (a glow costs milliseconds to make: 4 at 1080p, 13
        at 2160p, and a frame that makes one misses its time). A building of many
        window sizes (a mapped one) makes them all when they take at most
        `PREPARE_BYTES`, else as they light up; so does a `quick` one (calibrating:
        the mapping changes every frame)."""
        buckets = {bucket(r.width, r.height) for r in windows}
        colors = {rgb(view.color) for view in scene.tracks}
        if len(buckets) > 4:
            if quick:
                return
            levels = GLOW_LEVELS + 1
            each = sum(w * h * 4 * levels for w, h in (halo_size(*b) for b in buckets))
            if each * len(colors) > PREPARE_BYTES:
                return  # made as they light up
        for color in colors:
            for w, h in buckets:
                self.glow(color, w, h)


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


def bucket(width: int, height: int) -> tuple[int, int]:
    """A window's size rounded up to `HALO_BUCKET` pixels: the size its halo is made for."""
    return -(-width // HALO_BUCKET) * HALO_BUCKET, -(-height // HALO_BUCKET) * HALO_BUCKET


def _halo_pad(bucket_w: int, bucket_h: int) -> int:
    return max(2, round(HALO_REACH * min(bucket_w, bucket_h)))


def halo_size(width: int, height: int) -> tuple[int, int]:
    """The size of the halo `Glows.glow` makes for a `width`×`height` window (centred
    on it), without making it."""
    bw, bh = bucket(width, height)
    pad = _halo_pad(bw, bh)
    return bw + 2 * pad, bh + 2 * pad
