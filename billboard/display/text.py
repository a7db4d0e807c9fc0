"""Text on the billboard: fonts by size and rendered strings, kept for reuse."""

from __future__ import annotations

from collections import OrderedDict
from typing import Final

import pygame

from .palette import RGB

TEXT_CACHE_SIZE: Final = 384  # the HUD's numbers change every frame; the rest rarely


class TextCache:
    """Rendered strings, kept until they fall out of a small LRU cache: a string that
    is on screen every frame is rendered once. Every string the billboard draws goes
    through `render`."""

    def __init__(self) -> None:
        self._fonts: dict[int, pygame.font.Font] = {}
        self._cache: OrderedDict[tuple[str, int, RGB], pygame.Surface] = OrderedDict()

    def font(self, px: int) -> pygame.font.Font:
        """pygame's default font at `px` pixels (at least 8)."""
        px = max(8, px)
        font = self._fonts.get(px)
        if font is None:
            # pygame's default font (FreeSans Bold) ships with pygame: no system fonts
            # needed on the projector laptop, and bold reads well on brick.
            font = self._fonts[px] = pygame.font.Font(None, px)
        return font

    def render(self, text: str, px: int, color: RGB) -> pygame.Surface:
        """`text` at `px` pixels in `color`, antialiased, from the cache when it can."""
        key = (text, max(8, px), color)
        surface = self._cache.get(key)
        if surface is not None:
            self._cache.move_to_end(key)
            return surface
        surface = self.font(px).render(text, True, color)
        self._cache[key] = surface
        if len(self._cache) > TEXT_CACHE_SIZE:
            self._cache.popitem(last=False)
        return surface

    def fit(self, text: str, max_px: int, max_width: int) -> int:
        """The largest size ≤ `max_px` at which `text` fits in `max_width` pixels."""
        px = max(8, max_px)
        width = self.font(px).size(text)[0]
        while width > max_width and px > 8:
            px = max(8, min(px - 1, int(px * max_width / width)))
            width = self.font(px).size(text)[0]
        return px
