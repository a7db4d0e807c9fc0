"""The billboard's colours, and reading the config's "#rrggbb" into them."""

from __future__ import annotations

from typing import Final

from billboard.colors import RGB as RGB
from billboard.colors import UNREADABLE
from billboard.colors import rgb as rgb

# A projector adds light: black is "off", so the background stays black and only the
# building's outline, windows and text cost light (and contrast) on the wall.
BLACK: Final[RGB] = (0, 0, 0)
BUILDING: Final[RGB] = (16, 18, 26)
CORNICE: Final[RGB] = (38, 42, 58)
WINDOW_OFF: Final[RGB] = (30, 34, 48)
WINDOW_FRAME: Final[RGB] = (58, 64, 86)
CELL_OFF: Final[RGB] = (40, 44, 60)
CELL_PAST: Final[RGB] = (90, 96, 120)
TEXT: Final[RGB] = UNREADABLE
TEXT_DIM: Final[RGB] = (140, 146, 164)
ACCENT: Final[RGB] = (255, 204, 64)
ALERT: Final[RGB] = (255, 96, 64)
GRID_LINE: Final[RGB] = (70, 70, 70)


def mix(a: RGB, b: RGB, t: float) -> RGB:
    """The colour `t` of the way from `a` to `b` (`t` clamped to 0…1)."""
    t = min(1.0, max(0.0, t))
    return (
        round(a[0] + (b[0] - a[0]) * t),
        round(a[1] + (b[1] - a[1]) * t),
        round(a[2] + (b[2] - a[2]) * t),
    )
