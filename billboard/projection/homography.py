"""The corner-pin: a 3×3 homography taking the unit square to any four points, so a
facade seen off-axis by the projector still lands square on the building.

The square-to-quad solution is closed form (P. Heckbert, "Fundamentals of Texture
Mapping and Image Warping", UC Berkeley 1989, §2.2.3): no linear solver, plain floats.
"""

from __future__ import annotations

from dataclasses import dataclass

Point = tuple[float, float]
# Four points in order: top left, top right, bottom right, bottom left (clockwise on a
# screen whose y grows downwards).
Quad = tuple[Point, Point, Point, Point]
UNIT_SQUARE: Quad = ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0))

_EPSILON = 1e-12


@dataclass(frozen=True, slots=True)
class Homography:
    """A projective map of the plane, as the row-major 3×3 matrix `m`:
    (x, y) ↦ ((m0 x + m1 y + m2) / w, (m3 x + m4 y + m5) / w), w = m6 x + m7 y + m8."""

    m: tuple[float, float, float, float, float, float, float, float, float]

    @classmethod
    def square_to_quad(cls, quad: Quad) -> Homography:
        """The homography taking the unit square's corners (top left, top right, bottom
        right, bottom left) to `quad`'s. Raises ValueError when three of the points
        lie on one line (no homography does that)."""
        (x0, y0), (x1, y1), (x2, y2), (x3, y3) = quad
        sx, sy = x0 - x1 + x2 - x3, y0 - y1 + y2 - y3
        if abs(sx) < _EPSILON and abs(sy) < _EPSILON:
            g = h = 0.0  # a parallelogram: the map is affine
        else:
            dx1, dx2, dy1, dy2 = x1 - x2, x3 - x2, y1 - y2, y3 - y2
            den = dx1 * dy2 - dx2 * dy1
            if abs(den) < _EPSILON:
                raise ValueError(f"no corner-pin reaches {quad!r}: three corners on a line")
            g = (sx * dy2 - dx2 * sy) / den
            h = (dx1 * sy - sx * dy1) / den
        a, b = x1 - x0 + g * x1, x3 - x0 + h * x3
        d, e = y1 - y0 + g * y1, y3 - y0 + h * y3
        result = cls((a, b, x0, d, e, y0, g, h, 1.0))
        if abs(result.determinant()) < _EPSILON:
            raise ValueError(f"no corner-pin reaches {quad!r}: its corners are on a line")
        return result

    @classmethod
    def quad_to_quad(cls, source: Quad, target: Quad) -> Homography:
        """The homography taking `source`'s corners to `target`'s."""
        return cls.square_to_quad(source).inverse().then(cls.square_to_quad(target))

    def determinant(self) -> float:
        a, b, c, d, e, f, g, h, i = self.m
        return a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g)

    def map(self, point: Point) -> Point:
        """Where `point` goes. A point on the horizon line (w = 0) raises ValueError."""
        x, y = point
        a, b, c, d, e, f, g, h, i = self.m
        w = g * x + h * y + i
        if abs(w) < _EPSILON:
            raise ValueError(f"{point!r} maps to infinity")
        return (a * x + b * y + c) / w, (d * x + e * y + f) / w

    def map_quad(self, quad: Quad) -> Quad:
        """`quad`'s four corners, mapped."""
        p0, p1, p2, p3 = quad
        return self.map(p0), self.map(p1), self.map(p2), self.map(p3)

    def inverse(self) -> Homography:
        """The map back (the adjugate, scaled so its last entry is 1 when it can be)."""
        a, b, c, d, e, f, g, h, i = self.m
        det = self.determinant()
        if abs(det) < _EPSILON:
            raise ValueError("a degenerate homography has no inverse")
        adj = (
            e * i - f * h,
            c * h - b * i,
            b * f - c * e,
            f * g - d * i,
            a * i - c * g,
            c * d - a * f,
            d * h - e * g,
            b * g - a * h,
            a * e - b * d,
        )
        scale = adj[8] if abs(adj[8]) > _EPSILON else det
        n = tuple(v / scale for v in adj)
        return Homography((n[0], n[1], n[2], n[3], n[4], n[5], n[6], n[7], n[8]))

    def then(self, other: Homography) -> Homography:
        """This map followed by `other` (the matrix product other · self)."""
        a = other.m
        b = self.m
        p = [
            sum(a[r * 3 + k] * b[k * 3 + col] for k in range(3))
            for r in range(3)
            for col in range(3)
        ]
        scale = p[8] if abs(p[8]) > _EPSILON else 1.0
        n = [v / scale for v in p]
        return Homography((n[0], n[1], n[2], n[3], n[4], n[5], n[6], n[7], n[8]))

    def scaled(self, sx: float, sy: float) -> Homography:
        """This map followed by scaling x by `sx` and y by `sy` (fractions → pixels)."""
        a, b, c, d, e, f, g, h, i = self.m
        return Homography((a * sx, b * sx, c * sx, d * sy, e * sy, f * sy, g, h, i))
