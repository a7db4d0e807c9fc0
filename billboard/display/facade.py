"""The building's light, drawn the same in both layouts: every window as a polygon in
pixels (a rectangle on the dashboard, a mapped quad in the projection), so the pulse,
spill, ripples, patterns and labels decided in `alive` look alike on a flat screen
and on the wall.

A frame, over the static layer: each window's own light (the pulse, a section's
wash, the idle show's waves, the playhead climbing each region), then the lit
windows' spill on the wall (precomputed glows, added), the ripples of players' notes,
the lit panes with their track's pattern, and last, over everything, the players'
labels and join moments. Only what changed from the static layer is drawn: a window
at its unlit colour is left alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pygame

from billboard.engine.scene import Scene, TrackView
from billboard.projection import Quad

from .alive import (
    MARK_LEVEL,
    RIPPLE_REACH,
    Marks,
    ambient_colors,
    beat_pulse,
    join_strength,
    join_text,
    pattern_of,
    ripple,
)
from .content import player_label
from .glows import GLOW_LEVELS, Glows
from .palette import BLACK, RGB, WINDOW_OFF, mix, rgb
from .text import TextCache

Points = list[tuple[int, int]]
SPILL_ON_BEAT = 0.35  # the lit windows' spill swells with the pulse by this share
FAINTEST_SPILL = 4  # of GLOW_LEVELS: a fainter light spills nothing worth its blit
FAINTEST_MARKS = 0.3  # a fainter window's pattern is too dark to see: not drawn
LABEL_ALPHA = 160  # a label's backing: it reads over lit windows, which glow through
JOIN_LEVELS = 8  # steps of a join moment's fade (each a cached surface)


@dataclass(slots=True)
class Pane:
    """A window in pixels: its `quad`, the polygon its light fills (`points`), the
    part inside its frame that its own unlit light fills (`inner`), the rectangle
    around it, and whether its glow and its widest ripple stay inside the facade
    without cutting."""

    quad: Quad
    points: Points
    inner: Points
    box: pygame.Rect
    clear_of_edge: bool = True
    ripple_clear: bool = True
    # On the dashboard a window is a rectangle: its light and its inner light are
    # these (None: a quad, filled as the polygons above).
    rect: pygame.Rect | None = None
    inner_rect: pygame.Rect | None = None


def panes_from_rects(rects: Sequence[pygame.Rect], frame: int) -> list[Pane]:
    """The dashboard's windows, each inside a frame `frame` pixels wide."""
    panes = []
    for r in rects:
        quad: Quad = ((r.left, r.top), (r.right, r.top), (r.right, r.bottom), (r.left, r.bottom))
        inner = r.inflate(-2 * frame, -2 * frame) if r.width > 2 * frame + 1 else r
        pane = Pane(quad, _corners(r), _corners(inner), pygame.Rect(r))
        pane.rect, pane.inner_rect = pygame.Rect(r), pygame.Rect(inner)
        panes.append(pane)
    return panes


def panes_from_quads(quads: Sequence[Quad], boxes: Sequence[pygame.Rect]) -> list[Pane]:
    """The projection's windows: their quads in pixels and the rectangles around them."""
    panes = []
    for quad, box in zip(quads, boxes, strict=True):
        points = [(round(x), round(y)) for x, y in quad]
        panes.append(Pane(quad, points, points, pygame.Rect(box)))
    return panes


def ripple_rect(box: pygame.Rect, scale: float, width: int) -> pygame.Rect:
    """The rectangle of a ripple `scale` times the size of window `box`, its ring
    `width` pixels wide."""
    ring = pygame.Rect(0, 0, round(box.width * scale), round(box.height * scale))
    ring.center = box.center
    return ring.inflate(2 * width, 2 * width)


def ripple_width(unit: float) -> int:
    """A ripple's ring width at `unit` (1.0 at 1080 lines)."""
    return max(2, round(3 * unit))


def _corners(r: pygame.Rect) -> Points:
    # pygame fills a polygon's right and bottom edges too: one pixel in keeps a
    # rectangle's polygon on the rectangle's own pixels.
    right, bottom = r.right - 1, r.bottom - 1
    return [(r.left, r.top), (right, r.top), (right, bottom), (r.left, bottom)]


def _blittable(size: tuple[int, int]) -> pygame.Surface:
    """A surface to blit `size` pixels of, made a pixel wider when its rows would be a
    multiple of 16 bytes long: SDL copies such rows with streaming stores that skip
    the cache, which makes a small blit about ten times slower (measured: 50 blits
    of 300 × 330 pixels at 3840×2160, 13–19 ms aligned, 0.6–1.6 ms not)."""
    width, height = size
    padded = width + 1 if width % 4 == 0 else width
    return pygame.Surface((max(1, padded), max(1, height))).convert()


def _bilinear(quad: Quad, u: float, v: float) -> tuple[int, int]:
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = quad
    top = (x0 + (x1 - x0) * u, y0 + (y1 - y0) * u)
    bottom = (x3 + (x2 - x3) * u, y3 + (y2 - y3) * u)
    return round(top[0] + (bottom[0] - top[0]) * v), round(top[1] + (bottom[1] - top[1]) * v)


class FacadeLights:
    """Draws a scene's light on the building's windows (see the module's docstring);
    keeps the marks of each window's pattern and the labels' surfaces."""

    def __init__(self, text: TextCache) -> None:
        self._text = text
        self._marks: dict[tuple[int, int, int, int, int, Marks], list[Points]] = {}
        self._labels: dict[tuple[str, int, RGB, int], pygame.Surface] = {}
        self._fits: dict[tuple[str, int, int], int] = {}
        self._solids: dict[tuple[object, ...], pygame.Surface] = {}

    def clear(self) -> None:
        """Forget what was made for the windows' sizes (laid out again)."""
        self._marks.clear()
        self._labels.clear()
        self._fits.clear()
        self._solids.clear()

    def draw(
        self,
        screen: pygame.Surface,
        scene: Scene,
        panes: Sequence[Pane],
        glows: Glows,
        *,
        unit: float,
        mask: pygame.Surface | None = None,
    ) -> None:
        """`scene`'s light on `panes` (index floor * bays + bay); with `mask`, light
        that reaches past a window's edge of the facade is cut by blitting `mask`
        (black outside the facade, colour-keyed inside) over it."""
        bays = scene.facade.bays
        count = len(panes)
        lit: list[tuple[Pane, RGB, float, Marks]] = []
        lit_index: set[int] = set()
        patterns = {view.color: pattern_of(i) for i, view in enumerate(scene.tracks)}
        for light in scene.lit:
            index = light.floor * bays + light.bay
            if 0 <= index < count and 0 <= light.bay < bays:
                lit_index.add(index)
                marks = patterns.get(light.color, ())
                lit.append((panes[index], rgb(light.color), light.intensity, marks))
        # The windows' own light: pulse, wash, idle waves, the playhead.
        for index, color in enumerate(ambient_colors(scene)[:count]):
            if color != WINDOW_OFF and index not in lit_index:
                inner = panes[index].inner_rect
                if inner is not None:
                    screen.blit(self._solid(color, inner.size), inner, ((0, 0), inner.size))
                else:
                    pygame.draw.polygon(screen, color, panes[index].inner)
        # The spill on the wall around each lit window, swelling with the beat.
        spill = 1.0 + SPILL_ON_BEAT * beat_pulse(scene)
        cut: list[pygame.Rect] = []
        for pane, color, intensity, _ in lit:
            level = min(GLOW_LEVELS, max(0, round(intensity * spill * GLOW_LEVELS)))
            if level < FAINTEST_SPILL:
                continue
            glow = glows.for_frame(color, pane.box.width, pane.box.height)
            if glow is None:
                continue  # being made: none of its colour to borrow yet
            halo, placed = glow.halo_at(level, pane.box.center)
            screen.blit(halo, placed, special_flags=pygame.BLEND_ADD)
            if not pane.clear_of_edge:
                cut.append(placed)
        # A player's note ripples out of its window.
        width = ripple_width(unit)
        for pane, color, intensity, _ in lit:
            spread = ripple(intensity)
            if spread is None or spread >= 1.0:
                continue
            scale = 1.0 + (RIPPLE_REACH - 1.0) * spread
            ring = ripple_rect(pane.box, scale, width)
            pygame.draw.ellipse(screen, mix(WINDOW_OFF, color, 0.9 * (1.0 - spread)), ring, width)
            if mask is not None and not pane.ripple_clear:
                cut.append(ring)
        if cut and mask is not None:
            for area in cut:  # black out what spilled past the facade's edge
                screen.blit(mask, area, area)
        # The lit panes, each with its track's pattern of darker marks.
        for pane, color, intensity, marks in lit:
            share = min(GLOW_LEVELS, max(0, round(intensity * GLOW_LEVELS))) / GLOW_LEVELS
            shown = marks if marks and share >= FAINTEST_MARKS else ()
            if pane.rect is not None:
                made = self._lit_pane(pane, pane.rect, color, share, shown)
                screen.blit(made, pane.rect, ((0, 0), pane.rect.size))
                continue
            pygame.draw.polygon(screen, mix(WINDOW_OFF, color, share), pane.points)
            if shown:
                dark = mix(WINDOW_OFF, color, share * MARK_LEVEL)
                for points in self._marks_of(pane, shown):
                    pygame.draw.polygon(screen, dark, points)

    def _solid(self, color: RGB, size: tuple[int, int]) -> pygame.Surface:
        """A surface of `size` (or a pixel wider: see `_blittable`) in `color`, made
        once: on a rectangular window, blitting it is several times faster than a
        polygon or a fill of the same pixels."""
        key = (color, size)
        made = self._solids.get(key)
        if made is None:
            if len(self._solids) > 512:
                self._solids.clear()
            made = self._solids[key] = _blittable(size)
            made.fill(color)
        return made

    def _lit_pane(
        self, pane: Pane, rect: pygame.Rect, color: RGB, share: float, marks: Marks
    ) -> pygame.Surface:
        """A rectangular window lit at `share` with its `marks`, made once."""
        key = (color, share, rect.size, marks)
        made = self._solids.get(key)
        if made is None:
            if len(self._solids) > 512:
                self._solids.clear()
            made = self._solids[key] = _blittable(rect.size)
            made.fill(mix(WINDOW_OFF, color, share))
            if marks:
                dark = mix(WINDOW_OFF, color, share * MARK_LEVEL)
                for points in self._marks_of(pane, marks):
                    moved = [(x - rect.x, y - rect.y) for x, y in points]
                    pygame.draw.polygon(made, dark, moved)
        return made

    def _marks_of(self, pane: Pane, marks: Marks) -> list[Points]:
        key = (*pane.box, marks)
        made = self._marks.get(key)
        if made is None:
            if len(self._marks) > 2048:
                self._marks.clear()
            made = [
                [_bilinear(pane.quad, u, v) for u, v in ((u0, v0), (u1, v0), (u1, v1), (u0, v1))]
                for u0, v0, u1, v1 in marks
            ]
            self._marks[key] = made
        return made

    # -- who plays where ------------------------------------------------------------------

    def draw_labels(
        self, screen: pygame.Surface, scene: Scene, panes: Sequence[Pane], unit: float
    ) -> None:
        """Each player's label at the foot of their region, and, for a few seconds
        after someone joins, "Ana joins on bass" across their region."""
        floors, bays = scene.facade.floors, scene.facade.bays
        if len(panes) < floors * bays or not panes:
            return
        top = min(p.box.top for p in panes)
        bottom = max(p.box.bottom for p in panes)
        screen_rect = screen.get_rect()
        joins: list[tuple[TrackView, float, int, int]] = []
        for view in scene.tracks:
            if view.caller is None or view.region is None:
                continue
            first, width = view.region
            feet = [panes[(floors - 1) * bays + b].box for b in range(first, first + width)]
            left, right = min(r.left for r in feet), max(r.right for r in feet)
            centre = (left + right) // 2
            label = player_label(view)
            color = rgb(view.color)
            # Centred on the foot of the region's bottom floor (the wall below a
            # building's last windows is narrow, and on a mapped facade the info region
            # is there), never as high as a window's middle, where its light shows.
            tallest = round(0.7 * min(r.height for r in feet))
            px = self._fit(label, min(round(48 * unit), tallest), round((right - left) * 1.15))
            img = self._label(label, max(12, px), color, LABEL_ALPHA)
            place = img.get_rect(center=(centre, max(r.bottom for r in feet)))
            screen.blit(img, place.clamp(screen_rect))
            strength = join_strength(view, scene.time)
            if strength > 0:
                joins.append((view, strength, centre, len(joins)))
        for view, strength, centre, order in joins:
            words = join_text(view)
            px = self._fit(words, round(72 * unit), round(screen_rect.width * 0.6))
            level = max(1, round(strength * JOIN_LEVELS))
            color = mix(BLACK, rgb(view.color), level / JOIN_LEVELS)
            img = self._label(words, px, color, LABEL_ALPHA)
            # Several joining at once stand one above the other.
            y = (top + bottom) // 2 + (order % 3 - 1) * round(img.get_height() * 1.3)
            screen.blit(img, img.get_rect(center=(centre, y)).clamp(screen_rect))

    def _fit(self, words: str, max_px: int, width: int) -> int:
        """`TextCache.fit`, remembered (it measures the text at each size it tries)."""
        key = (words, max_px, width)
        px = self._fits.get(key)
        if px is None:
            if len(self._fits) > 256:
                self._fits.clear()
            px = self._fits[key] = self._text.fit(words, max_px, width)
        return px

    def _label(self, words: str, px: int, color: RGB, alpha: int) -> pygame.Surface:
        """`words` on a translucent black backing (`alpha` of 255), made once."""
        key = (words, px, color, alpha)
        made = self._labels.get(key)
        if made is None:
            if len(self._labels) > 128:
                self._labels.clear()
            text = self._text.render(words, px, color)
            pad = max(2, px // 6)
            made = pygame.Surface(
                (text.get_width() + 2 * pad, text.get_height() + pad), pygame.SRCALPHA
            ).convert_alpha()
            made.fill((0, 0, 0, alpha))
            made.blit(text, (pad, pad // 2))
            self._labels[key] = made
        return made
