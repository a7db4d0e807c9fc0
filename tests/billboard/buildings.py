"""A real building for the display's tests: a 6 × 14 facade seen off-axis by the
projector, its 84 windows measured out of square (shared by test_projection_display
and test_alive)."""

from __future__ import annotations

from billboard.projection import Quad

FLOORS, BAYS = 6, 14
# The facade as an off-axis projector sees it: wider at the bottom, leaning right.
CORNERS: Quad = ((0.08, 0.05), (0.93, 0.11), (0.96, 0.9), (0.04, 0.95))


def building_windows() -> tuple[Quad, ...]:
    """84 windows as measured on a real building: floors of different heights, bays of
    different widths, each window a little out of square; all above the ground floor's
    band, which the info region takes."""
    heights = [0.15, 0.13, 0.13, 0.13, 0.13, 0.15]
    widths = [1.0 + 0.25 * ((bay * 5) % 3) for bay in range(BAYS)]
    quads = []
    y = 0.01
    for floor in range(FLOORS):
        h = heights[floor] * 0.84 / sum(heights) * 0.98
        x = 0.01
        for bay in range(BAYS):
            w = widths[bay] / sum(widths) * 0.98
            x0, x1, y0, y1 = x + 0.18 * w, x + 0.82 * w, y + 0.15 * h, y + 0.85 * h
            lean = 0.04 * w * ((floor + bay) % 3 - 1)  # out of square by a little
            quads.append(((x0 + lean, y0), (x1 + lean, y0 + 0.02 * h), (x1, y1), (x0, y1)))
            x += w
        y += h
    return tuple(quads)
