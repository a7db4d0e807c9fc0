"""Dirty rectangles: which parts of the screen a frame changed, so the next frame
restores only those from the static layer and the window shows only what changed.

At projector sizes a whole frame is costly to move twice (the static layer blitted
over the screen, the screen sent to the window: about 4 and 5 ms each at 3840×2160
under X); the parts that change each frame (the windows' light and spill, labels,
the panel's moving parts) are a share of it. The rectangles drawn are gathered on a
grid of tiles, so the many overlapping ones of a busy facade (a halo over its
neighbours' panes) are restored and sent once, as a few wide runs of tiles.

The rule `Display` keeps: outside the tiles of the last frame's damage, the screen
holds the static layer. So a frame first restores the last frame's tiles, draws,
and sends both its own and the last frame's tiles (what was drawn there last time
is gone now)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pygame

TILE_AT_1080: int = 32  # pixels; scaled with the output (64 at 2160 lines)


class Damage:
    """The tiles a frame drew on, for a screen of `size` pixels."""

    def __init__(self, size: tuple[int, int], tile: int) -> None:
        self.size = size
        self.tile = max(8, tile)
        self._shape = (-(-size[1] // self.tile), -(-size[0] // self.tile))  # rows, columns
        self._added: list[tuple[int, int, int, int]] = []  # x, y, w, h, marked on demand
        self._marked: np.ndarray | None = None
        self.everything = False

    @classmethod
    def for_size(cls, size: tuple[int, int]) -> Damage:
        """Tiles scaled with the output: `TILE_AT_1080` at 1080 lines."""
        unit = min(size[0] / 1920, size[1] / 1080)
        return cls(size, round(TILE_AT_1080 * max(0.25, unit)))

    def add(self, rect: pygame.Rect | None) -> None:
        """`rect` was drawn on (clipped to the screen; None or empty: nothing)."""
        if rect is not None and rect.width > 0 and rect.height > 0:
            self._added.append((rect.x, rect.y, rect.width, rect.height))
            self._marked = None

    def add_all(self, rects: Iterable[pygame.Rect]) -> None:
        self._added.extend((r.x, r.y, r.width, r.height) for r in rects if r.width and r.height)
        self._marked = None

    @property
    def _grid(self) -> np.ndarray:
        """The damaged tiles, [row, column]: every rectangle added, marked at once (the
        corners of each into a grid of differences, summed along both axes)."""
        if self._marked is not None:
            return self._marked
        rows, cols = self._shape
        size = (rows + 1) * (cols + 1)
        grid = np.zeros(size, dtype=np.int64)
        if self._added:
            x, y, w, h = np.array(self._added, dtype=np.int64).T
            t, (width, height) = self.tile, self.size
            x0, y0 = np.clip(x, 0, width), np.clip(y, 0, height)
            x1, y1 = np.clip(x + w, 0, width), np.clip(y + h, 0, height)
            on = (x1 > x0) & (y1 > y0)  # what is left on the screen
            c0, r0 = x0[on] // t, y0[on] // t
            c1, r1 = (x1[on] - 1) // t + 1, (y1[on] - 1) // t + 1
            stride = cols + 1
            grid += np.bincount(r0 * stride + c0, minlength=size)
            grid -= np.bincount(r0 * stride + c1, minlength=size)
            grid -= np.bincount(r1 * stride + c0, minlength=size)
            grid += np.bincount(r1 * stride + c1, minlength=size)
        sums = grid.reshape(rows + 1, cols + 1).cumsum(axis=0).cumsum(axis=1)
        marked = sums[:rows, :cols] > 0
        self._marked = marked
        return marked

    def add_everything(self) -> None:
        """The whole screen was drawn on."""
        self.everything = True

    def union(self, other: Damage) -> Damage:
        """A new damage holding both (the same size and tiles)."""
        both = Damage(self.size, self.tile)
        both.everything = self.everything or other.everything
        if not both.everything:
            both._marked = self._grid | other._grid
        return both

    def rects(self) -> list[pygame.Rect]:
        """The damaged tiles as a few rectangles (runs of tiles along a row, joined
        with the same runs in the rows below), clipped to the screen."""
        screen = pygame.Rect((0, 0), self.size)
        if self.everything:
            return [screen]
        t = self.tile
        rows, cols = self._grid.shape
        padded = np.zeros((rows, cols + 2), dtype=np.int8)
        padded[:, 1:-1] = self._grid
        edges = np.diff(padded, axis=1)  # +1 where a run starts, -1 after it ends
        start_rows, starts = np.nonzero(edges == 1)
        ends = np.nonzero(edges == -1)[1]  # row-major: the same runs, in order
        out: list[pygame.Rect] = []
        open_runs: dict[tuple[int, int], pygame.Rect] = {}
        row_now = -1
        still: dict[tuple[int, int], pygame.Rect] = {}
        for row, a, b in zip(start_rows.tolist(), starts.tolist(), ends.tolist(), strict=True):
            if row != row_now:  # runs of the rows in between (or above) end here
                out.extend(open_runs.values())
                open_runs = still if row == row_now + 1 else {}
                if row != row_now + 1:
                    out.extend(still.values())
                still, row_now = {}, row
            rect = open_runs.pop((a, b), None)
            if rect is None:
                rect = pygame.Rect(a * t, row * t, (b - a) * t, t)
            else:
                rect.height += t
            still[(a, b)] = rect
        out.extend(open_runs.values())
        out.extend(still.values())
        return [rect.clip(screen) for rect in out]

    def share(self) -> float:
        """The part of the screen damaged, 0 … 1."""
        return 1.0 if self.everything else float(self._grid.mean())

    def __bool__(self) -> bool:
        return self.everything or bool(self._grid.any())
