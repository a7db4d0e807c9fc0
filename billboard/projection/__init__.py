"""Projection mapping: where the building's facade and each of its windows land in
the projector's output, and how an operator sets that by eye.

Pure geometry and state, no pygame (the display draws it, `controls` reads the
mouse and keys into `calibration`'s actions):

- `homography` is the corner-pin: the 3×3 homography from the unit square (the
  facade's own coordinates) to four points, mapping points and inverting;
- `geometry` holds `Projection`, the installation's mapping (the facade's four
  corners as fractions of the output, every window a quad in facade coordinates),
  `MappedFacade`, the same in output pixels for one output size (what drawing code
  and future facade effects draw into), and the checks a quad must pass;
- `calibration` is the calibration mode's state machine: select, drag, nudge, snap,
  undo and redo, each giving a new `Projection`;
- `table` reads the ``[billboard.projection]`` table of the installation's TOML file
  and writes it back, leaving the rest of the operator's file as it was.

Coordinates: the output is (0, 0) at its top left to (1, 1) at its bottom right; the
facade is the unit square (u, v), (0, 0) at its top-left corner, (1, 1) at its bottom
right, *before* the corner-pin. A window given in facade coordinates moves with the
corners, so re-aiming the projector means dragging four corners, not 84 windows; on a
flat facade seen straight on, a building's windows are plain rectangles there.
"""

from .geometry import (
    INFO_MODES,
    MappedFacade,
    Projection,
    default_projection,
    even_grid,
    quad_problem,
)
from .homography import Homography, Point, Quad

__all__ = [
    "INFO_MODES",
    "Homography",
    "MappedFacade",
    "Point",
    "Projection",
    "Quad",
    "default_projection",
    "even_grid",
    "quad_problem",
]
