"""The installation's mapping (`Projection`), the same in output pixels
(`MappedFacade`), and what makes a quad fit to draw (`quad_problem`)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Final, Literal

from .homography import UNIT_SQUARE, Homography, Point, Quad

InfoMode = Literal["region", "window", "off"]
INFO_MODES: Final[tuple[InfoMode, ...]] = ("region", "window", "off")
Rect = tuple[float, float, float, float]  # x, y, w, h

# A fresh mapping keeps its corners a little inside the output, so each handle can be
# seen and grabbed, and gives the ground floor's band to the banner and QR code.
DEFAULT_INSET: Final = 0.04
DEFAULT_INFO_REGION: Final[Rect] = (0.0, 0.84, 1.0, 0.16)
# Corners may lie outside the output (a building wider than the projector's throw):
# within half an output of it; windows are always inside the facade.
CORNER_MIN: Final = -0.5
CORNER_MAX: Final = 1.5


@dataclass(frozen=True, slots=True)
class Projection:
    """Where the facade lands: `corners` (top left, top right, bottom right, bottom
    left) as fractions of the output, `windows` one quad per window in facade
    coordinates (floor by floor from the top, bay by bay: index floor * bays + bay),
    and where the banner, QR code and legend go: `info` "region" (the rectangle
    `info_region` of the facade, x, y, w, h in facade coordinates), "window" (a
    second window on display `info_display`) or "off". `underlay` is a photo of the
    building shown while calibrating ("" for none)."""

    corners: Quad
    windows: tuple[Quad, ...]
    info: InfoMode = "region"
    info_region: Rect = DEFAULT_INFO_REGION
    info_display: int = 1
    underlay: str = ""

    def facade_to_output(self) -> Homography:
        """The corner-pin: facade coordinates → output fractions."""
        return Homography.square_to_quad(self.corners)

    def mapped(self, size: tuple[int, int]) -> MappedFacade:
        """This mapping in the pixels of an output of `size`."""
        return MappedFacade(size, self.facade_to_output().scaled(size[0], size[1]), self)

    def info_quad(self) -> Quad:
        """The info region's corners in facade coordinates."""
        x, y, w, h = self.info_region
        return ((x, y), (x + w, y), (x + w, y + h), (x, y + h))


@dataclass(frozen=True)
class MappedFacade:
    """A `Projection` in the pixels of one output size: what the drawing code (and any
    effect that draws on the building) works in. `homography` maps facade coordinates
    to output pixels."""

    size: tuple[int, int]
    homography: Homography
    projection: Projection

    def to_screen(self, point: Point) -> Point:
        """Facade coordinates (u, v) → output pixels (x, y)."""
        return self.homography.map(point)

    def to_facade(self, point: Point) -> Point:
        """Output pixels (x, y) → facade coordinates (u, v)."""
        return self.inverse.map(point)

    @cached_property
    def inverse(self) -> Homography:
        """Output pixels → facade coordinates."""
        return self.homography.inverse()

    @cached_property
    def outline(self) -> Quad:
        """The facade's corners in pixels."""
        return self.homography.map_quad(UNIT_SQUARE)

    @cached_property
    def windows(self) -> tuple[Quad, ...]:
        """Every window's quad in pixels, in the projection's order."""
        return tuple(self.homography.map_quad(q) for q in self.projection.windows)

    @cached_property
    def info(self) -> Quad:
        """The info region's corners in pixels."""
        return self.homography.map_quad(self.projection.info_quad())


def even_grid(floors: int, bays: int, area: Rect = (0.0, 0.0, 1.0, 1.0)) -> tuple[Quad, ...]:
    """`floors` × `bays` windows in an even grid over `area` of the facade (each window
    64 % of its cell's width and 58 % of its height, as the dashboard draws them)."""
    ax, ay, aw, ah = area
    cell_w, cell_h = aw / bays, ah / floors
    win_w, win_h = cell_w * 0.64, cell_h * 0.58
    quads = []
    for floor in range(floors):
        for bay in range(bays):
            cx, cy = ax + (bay + 0.5) * cell_w, ay + (floor + 0.5) * cell_h
            x0, y0, x1, y1 = cx - win_w / 2, cy - win_h / 2, cx + win_w / 2, cy + win_h / 2
            quads.append(round_quad(((x0, y0), (x1, y0), (x1, y1), (x0, y1))))
    return tuple(quads)


def default_projection(floors: int, bays: int) -> Projection:
    """A mapping to start calibrating from: the facade nearly filling the output, the
    windows an even grid above the info band at its foot."""
    lo, hi = DEFAULT_INSET, 1 - DEFAULT_INSET
    corners: Quad = ((lo, lo), (hi, lo), (hi, hi), (lo, hi))
    band = DEFAULT_INFO_REGION[1]
    return Projection(corners, even_grid(floors, bays, (0.0, 0.0, 1.0, band)))


def round_quad(quad: Quad, digits: int = 6) -> Quad:
    """`quad` rounded to `digits` decimals: a millionth of the facade is a twentieth of
    a pixel at 8K, and such numbers read back from TOML exactly as they were written."""
    p0, p1, p2, p3 = ((round(x, digits), round(y, digits)) for x, y in quad)
    return p0, p1, p2, p3


def _cross(o: Point, a: Point, b: Point) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def _segments_cross(p: Point, q: Point, r: Point, s: Point) -> bool:
    d1, d2 = _cross(r, s, p), _cross(r, s, q)
    d3, d4 = _cross(p, q, r), _cross(p, q, s)
    return ((d1 > 0) != (d2 > 0)) and ((d3 > 0) != (d4 > 0)) and 0 not in (d1, d2, d3, d4)


def quad_problem(quad: Quad) -> str | None:
    """Why `quad` cannot be a window or a facade ("crosses itself", "has no area",
    "is not convex"), or None when it is a convex quad. The first two are refused
    everywhere; a concave window draws, but is almost surely a vertex dragged astray."""
    p0, p1, p2, p3 = quad
    if _segments_cross(p0, p1, p2, p3) or _segments_cross(p1, p2, p3, p0):
        return "crosses itself"
    area = 0.5 * (_cross(p0, p1, p2) + _cross(p0, p2, p3))
    if abs(area) < 1e-9:
        return "has no area"
    turns = [_cross(quad[i], quad[(i + 1) % 4], quad[(i + 2) % 4]) for i in range(4)]
    if not (all(t > 0 for t in turns) or all(t < 0 for t in turns)):
        return "is not convex"
    return None


def inside(quad: Quad, point: Point) -> bool:
    """`point` is inside the convex `quad` (or on its edge)."""
    signs = [_cross(quad[i], quad[(i + 1) % 4], point) for i in range(4)]
    return all(s >= 0 for s in signs) or all(s <= 0 for s in signs)
