"""The static layer: everything that does not change from frame to frame (the
building, its unlit windows, the banner and the beat strip's cells), drawn once into
one surface that each frame blits whole; and the QR code with its caption, drawn once
into its own surface, which a frame shows beside the facade unless the idle show
puts a larger one in front."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
import pygame
import segno

from billboard.engine.scene import Scene

from .content import Banner
from .facade import Pane, panes_from_rects
from .layout import Layout, WindowRect, place_qr, window_rects
from .palette import (
    ACCENT,
    BLACK,
    BUILDING,
    CELL_OFF,
    CELL_PAST,
    CORNICE,
    TEXT,
    TEXT_DIM,
    WINDOW_FRAME,
    WINDOW_OFF,
)
from .text import TextCache

QR_BORDER: Final = 4  # ISO/IEC 18004 asks for a quiet zone of 4 modules


def qr_surface(url: str) -> tuple[pygame.Surface, int]:
    """The QR code of `url` with its quiet zone, one pixel per module (dark on white),
    and the number of modules across (quiet zone included)."""
    code = segno.make(url, error="m", micro=False)
    matrix = np.array(list(code.matrix_iter(scale=1, border=QR_BORDER)), dtype=bool)
    pixels = np.where(matrix, 0, 255).astype(np.uint8)
    # surfarray indexes [x, y]; segno gives rows first.
    surface = pygame.surfarray.make_surface(np.repeat(pixels.T[:, :, None], 3, axis=2))
    return surface, matrix.shape[0]


class Background:
    """The static layer, rebuilt only when the window size, the facade grid or the
    loop length changes. After `update` it holds the facade's windows in pixels and
    the beat strip's cells, which the moving layer draws over."""

    def __init__(
        self, banner: Banner, windows: Sequence[WindowRect] | None, text: TextCache
    ) -> None:
        self._banner = banner
        self._windows = windows
        self._text = text
        self._qr: tuple[pygame.Surface, int] | None = None  # the same URL all night
        self._key: tuple[object, ...] | None = None
        self.surface: pygame.Surface | None = None
        self.windows_px: list[pygame.Rect] = []  # index floor * bays + bay
        self.beat_cells: list[pygame.Rect] = []
        self.beat_past: pygame.Surface | None = None  # the cells as a bar's past steps
        self.panes: list[Pane] = []  # the windows as `facade` draws their light
        self._qr_card: tuple[pygame.Surface, pygame.Rect] | None = None

    def invalidate(self) -> None:
        """Rebuild at the next `update` (the window was laid out again)."""
        self._key = None

    def update(self, layout: Layout, scene: Scene) -> bool:
        """Make the layer fit `layout` and `scene`'s facade and loop; True when it was
        rebuilt (so what depends on the windows' sizes is stale)."""
        size = layout.size
        key = (size, scene.facade.floors, scene.facade.bays, scene.loop_steps)
        if key == self._key and self.surface is not None:
            return False
        self.windows_px = window_rects(layout.facade, scene.facade, self._windows)
        self.panes = panes_from_rects(self.windows_px, max(1, round(2 * layout.unit)))
        bg = pygame.Surface(size).convert()
        bg.fill(BLACK)
        self._paint_building(bg, layout)
        self._paint_banner(bg, layout)
        self._qr_card = None
        self._paint_beat_cells(bg, layout, scene.loop_steps)
        self.surface, self._key = bg, key
        return True

    def _paint_building(self, bg: pygame.Surface, lay: Layout) -> None:
        frame = max(1, round(2 * lay.unit))
        if self._windows is None:  # a drawn building; on a real one the wall is the building
            bg.fill(BUILDING, lay.facade)
            cornice = pygame.Rect(lay.facade.x, lay.facade.y, lay.facade.width, frame * 3)
            bg.fill(CORNICE, cornice)
        for rect in self.windows_px:
            bg.fill(WINDOW_OFF, rect)
            pygame.draw.rect(bg, WINDOW_FRAME, rect, frame)

    def _paint_banner(self, bg: pygame.Surface, lay: Layout) -> None:
        b = self._banner
        title_px = lay.px(0.06)
        title = self._text.render(b.title, title_px, ACCENT)
        bg.blit(title, (lay.margin, lay.banner.centery - title.get_height() // 2))
        left = lay.margin * 2 + title.get_width()
        room = lay.status.left - lay.margin - left
        # The call is said once, here; without a number the address is the way in (the
        # code beside the facade is captioned "Scan to play").
        if b.phone:
            call = f"Call {b.phone} to play"
        elif b.keypad_url:
            call = b.keypad_url.split("://", 1)[-1]
        else:
            call = "Play along!"
        px = self._text.fit(call, lay.px(0.085), room)
        text = self._text.render(call, px, TEXT)
        bg.blit(text, (left, lay.banner.centery - text.get_height() // 2))
        rule = max(1, round(2 * lay.unit))
        bg.fill(WINDOW_FRAME, (0, lay.banner.bottom - rule, lay.size[0], rule))

    def qr_card(self, lay: Layout) -> tuple[pygame.Surface, pygame.Rect] | None:
        """The code, and beside it what it is for and, with a number to call, the
        address for those who type it (without one, the banner shows the address);
        made at the first frame that shows it, and where it goes (None: no code)."""
        url = self._banner.keypad_url
        if not url or lay.qr.width <= 0:
            return None
        if self._qr_card is None:
            self._qr_card = self._make_qr_card(url, lay)
        return self._qr_card

    def _make_qr_card(self, url: str, lay: Layout) -> tuple[pygame.Surface, pygame.Rect]:
        if self._qr is None:
            self._qr = qr_surface(url)
        code, modules = self._qr
        area = lay.qr.union(lay.scan).union(lay.address)
        card = pygame.Surface(area.size).convert()
        card.fill(BLACK)
        placed, _ = place_qr(lay.qr, modules)
        card.blit(pygame.transform.scale(code, placed.size), placed.move(-area.x, -area.y))
        scan = lay.scan.move(-area.x, -area.y)
        head = self._text.render(
            "Scan to play", self._text.fit("Scan to play", lay.px(0.06), scan.width), TEXT
        )
        card.blit(head, (scan.x, scan.centery - head.get_height() // 2))
        if self._banner.phone:
            address = lay.address.move(-area.x, -area.y)
            shown = url.split("://", 1)[-1]
            px = self._text.fit(shown, address.height, address.width)
            small = self._text.render(shown, px, TEXT)
            card.blit(small, small.get_rect(midleft=address.midleft))
        return card, area

    def _paint_beat_cells(self, bg: pygame.Surface, lay: Layout, loop_steps: int) -> None:
        steps = max(1, loop_steps)
        area = lay.beat
        gap = max(1, round(3 * lay.unit))
        cell_w = (area.width - gap * (steps - 1)) / steps
        self.beat_cells = []
        past = pygame.Surface(area.size).convert()
        past.fill(BLACK)
        for i in range(steps):
            x = round(i * (cell_w + gap))
            # Beats (every 4th step) stand taller: the eye counts 1-2-3-4 from the wall.
            inset = 0 if i % 4 == 0 else area.height // 4
            cell = pygame.Rect(
                area.x + x, area.y + inset, max(1, round(cell_w)), area.height - 2 * inset
            )
            self.beat_cells.append(cell)
            bg.fill(TEXT_DIM if i % 16 == 0 else CELL_OFF, cell)
            past.fill(CELL_PAST, cell.move(-area.x, -area.y))
        self.beat_past = past
