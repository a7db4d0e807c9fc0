"""The calibration mode drawn over the live output: the facade's outline and its four
corner handles (coloured as the test pattern's corners: red top left, green top
right, yellow bottom right, blue bottom left), every window's quad numbered as listed
in the config, the selection in white, a window that cannot be saved in red, the
photo of the building at half strength when asked for, and a card saying what is
selected and which keys do what."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pygame

from billboard.projection import quad_problem
from billboard.projection.calibration import (
    Calibration,
    Corner,
    Vertex,
    WholeFacade,
    Window,
    centroid,
)
from billboard.projection.homography import Quad

from .palette import ACCENT, ALERT, RGB, TEXT
from .text import TextCache

CORNER_COLORS: Final[tuple[RGB, ...]] = ((255, 0, 0), (0, 255, 0), (255, 255, 0), (0, 128, 255))
QUAD_COLOR: Final[RGB] = (0, 255, 255)
SELECTED: Final[RGB] = (255, 255, 255)
UNDERLAY_ALPHA: Final = 128


@dataclass(frozen=True)
class CalibrationOverlay:
    """What the calibration mode shows: the `state`, the facade's `bays` (to name a
    window's floor and bay), the card's `lines`, and the `underlay` photo to show
    (None: none)."""

    state: Calibration
    lines: tuple[str, ...]
    underlay: Path | None = None


class Underlay:
    """The building's photo, loaded once per path and scaled to the output."""

    def __init__(self) -> None:
        self._key: tuple[Path, tuple[int, int]] | None = None
        self._surface: pygame.Surface | None = None

    def surface(self, path: Path, size: tuple[int, int]) -> pygame.Surface:
        """The photo at `path` scaled to `size`, half transparent. Raises OSError when
        it cannot be read."""
        if self._key != (path, size) or self._surface is None:
            try:
                photo = pygame.image.load(str(path)).convert()
            except (pygame.error, FileNotFoundError) as exc:
                raise OSError(f"cannot read the underlay {path}: {exc}") from exc
            scaled = pygame.transform.smoothscale(photo, size)
            scaled.set_alpha(UNDERLAY_ALPHA)
            self._surface, self._key = scaled, (path, size)
        return self._surface


def _points(quad: Quad) -> list[tuple[int, int]]:
    return [(round(x), round(y)) for x, y in quad]


def draw_calibration(
    screen: pygame.Surface, overlay: CalibrationOverlay, text: TextCache, unit: float
) -> None:
    """The handles, quads and numbers of `overlay` over what is on `screen`."""
    state = overlay.state
    mapped = state.mapped
    selected = state.selected
    line = max(1, round(2 * unit))
    radius = max(6, round(14 * unit))
    pygame.draw.polygon(screen, ACCENT, _points(mapped.outline), line)
    info = mapped.info if mapped.projection.info == "region" else None
    if info is not None:
        pygame.draw.polygon(screen, ACCENT, _points(info), 1)
    chosen_window = (
        selected.index
        if isinstance(selected, Window)
        else selected.window
        if isinstance(selected, Vertex)
        else None
    )
    for index, quad in enumerate(mapped.windows):
        bad = quad_problem(mapped.projection.windows[index]) is not None
        color = ALERT if bad else SELECTED if index == chosen_window else QUAD_COLOR
        pygame.draw.polygon(screen, color, _points(quad), line if index == chosen_window else 1)
        height = abs(quad[3][1] - quad[0][1])
        label = text.render(str(index), max(8, round(height * 0.4)), color)
        cx, cy = centroid(quad)
        screen.blit(label, label.get_rect(center=(round(cx), round(cy))))
        dot = max(2, radius // 4) if index == chosen_window else max(1, radius // 6)
        for k, (x, y) in enumerate(_points(quad)):
            is_it = selected == Vertex(index, k)
            size = dot * 2 if is_it else dot
            square = (x - size, y - size, 2 * size + 1, 2 * size + 1)
            pygame.draw.rect(screen, SELECTED if is_it else color, square)
    for i, (x, y) in enumerate(_points(mapped.outline)):
        chosen = selected == Corner(i) or isinstance(selected, WholeFacade)
        pygame.draw.circle(screen, CORNER_COLORS[i], (x, y), radius, 0 if chosen else line * 2)
        if chosen:
            pygame.draw.circle(screen, SELECTED, (x, y), radius + line * 2, line)
        pygame.draw.line(screen, TEXT, (x - radius // 2, y), (x + radius // 2, y), 1)
        pygame.draw.line(screen, TEXT, (x, y - radius // 2), (x, y + radius // 2), 1)
