"""The projection layout: the whole output is the building. The facade's windows are
drawn as the quads a `MappedFacade` puts them at (see billboard/projection/), lit
with the glows of `glows` fitted to each quad's bounding box, and nothing is drawn
outside the mapped facade (halos that reach its edge are cut there).

The info region (the banner's call to play, the QR code and who plays what) is drawn
flat once per change and warped into its quad of the facade with the corner-pin, so
it lands square on the wall like the windows; so is the idle show's invitation, in the
middle of the facade (`WarpedCard`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

import numpy as np
import pygame

from billboard.engine.scene import Scene
from billboard.projection import Homography, MappedFacade, Quad

from .alive import RIPPLE_REACH
from .background import qr_surface
from .content import Banner, LegendLine, legend_lines
from .facade import Pane, panes_from_quads, ripple_rect, ripple_width
from .glows import Glows, halo_size
from .layout import place_qr
from .palette import ACCENT, BLACK, TEXT, WINDOW_FRAME, WINDOW_OFF, rgb
from .text import TextCache

# The colour that marks "not drawn" in masks and warped surfaces (never a palette
# colour: a projector shows (255, 0, 255) as magenta, which nothing here uses).
KEY: Final = (255, 0, 255)


def bounds(quad: Quad) -> pygame.Rect:
    """The smallest pixel rectangle holding `quad`."""
    xs, ys = [p[0] for p in quad], [p[1] for p in quad]
    left, top = int(np.floor(min(xs))), int(np.floor(min(ys)))
    return pygame.Rect(left, top, int(np.ceil(max(xs))) - left, int(np.ceil(max(ys))) - top)


def warp(source: pygame.Surface, to_screen: Homography, area: pygame.Rect) -> pygame.Surface:
    """`source` mapped into `area` of the screen by `to_screen` (source pixels → screen
    pixels), nearest neighbour (a QR code stays crisp), `KEY` where no source pixel
    lands (and colour-keyed, so a blit draws only the warped picture)."""
    width, height = max(1, area.width), max(1, area.height)
    a, b, c, d, e, f, g, h, i = to_screen.inverse().m
    xs = np.arange(area.x, area.x + width, dtype=np.float64)[:, None] + 0.5
    ys = np.arange(area.y, area.y + height, dtype=np.float64)[None, :] + 0.5
    w = g * xs + h * ys + i
    u = np.floor((a * xs + b * ys + c) / w).astype(np.int64)
    v = np.floor((d * xs + e * ys + f) / w).astype(np.int64)
    pixels = pygame.surfarray.array3d(source)
    sw, sh = pixels.shape[0], pixels.shape[1]
    valid = (u >= 0) & (u < sw) & (v >= 0) & (v < sh)
    if source.get_flags() & pygame.SRCALPHA:  # translucent: it stays so, clear outside
        surface = pygame.Surface((width, height), pygame.SRCALPHA).convert_alpha()
        rgb_view = pygame.surfarray.pixels3d(surface)
        rgb_view[...] = 0
        rgb_view[valid] = pixels[u[valid], v[valid]]
        del rgb_view
        alpha = pygame.surfarray.pixels_alpha(surface)
        alpha[...] = 0
        alpha[valid] = pygame.surfarray.array_alpha(source)[u[valid], v[valid]]
        del alpha
        return surface
    out = np.empty((width, height, 3), dtype=np.uint8)
    out[...] = KEY
    out[valid] = pixels[u[valid], v[valid]]
    surface = pygame.surfarray.make_surface(out).convert()
    surface.set_colorkey(KEY, pygame.RLEACCEL)  # blitted every frame: see the mask's
    return surface


class MappedBackground:
    """The static layer of the projection layout (black, the unlit windows' quads) and
    the mask that cuts light at the facade's edge; rebuilt when the mapping or the
    output size changes."""

    def __init__(self) -> None:
        self._key: tuple[object, ...] | None = None
        self.surface: pygame.Surface | None = None
        self.mask: pygame.Surface | None = None  # black outside the facade, KEY inside
        self.panes: list[Pane] = []  # the windows, index floor * bays + bay

    def invalidate(self) -> None:
        self._key = None

    def update(self, mapped: MappedFacade, glows: Glows) -> bool:
        """Fit `mapped`; True when rebuilt."""
        key = (mapped.size, mapped.projection)
        if key == self._key and self.surface is not None:
            return False
        size = mapped.size
        outline = [(round(x), round(y)) for x, y in mapped.outline]
        mask = pygame.Surface(size).convert()
        mask.fill(BLACK)
        pygame.draw.polygon(mask, KEY, outline)
        # Run-length encoded: a cut copies only the black runs outside the facade and
        # skips the rest, several times faster than testing every pixel for the key.
        mask.set_colorkey(KEY, pygame.RLEACCEL)
        bg = pygame.Surface(size).convert()
        bg.fill(BLACK)
        unit = min(size[0] / 1920, size[1] / 1080)  # as the layout's
        frame = max(1, round(2 * unit))
        self.panes = panes_from_quads(mapped.windows, [bounds(q) for q in mapped.windows])
        for pane in self.panes:
            pygame.draw.polygon(bg, WINDOW_OFF, pane.points)
            pygame.draw.polygon(bg, WINDOW_FRAME, pane.points, frame)
        glows.fit([pane.box for pane in self.panes])
        for pane in self.panes:
            corners = pygame.Rect((0, 0), halo_size(pane.box.width, pane.box.height))
            corners.center = pane.box.center  # where its halo will be blitted
            ends = (corners.topleft, corners.topright, corners.bottomleft, corners.bottomright)
            pane.clear_of_edge = all(_inside_mask(mask, p) for p in ends)
            ring = ripple_rect(pane.box, RIPPLE_REACH, ripple_width(unit))
            ends = (ring.topleft, ring.topright, ring.bottomleft, ring.bottomright)
            pane.ripple_clear = all(_inside_mask(mask, p) for p in ends)
        self.surface, self.mask, self._key = bg, mask, key
        return True


def _inside_mask(mask: pygame.Surface, point: tuple[int, int]) -> bool:
    x, y = point
    if not (0 <= x < mask.get_width() and 0 <= y < mask.get_height()):
        return False
    return tuple(mask.get_at((x, y)))[:3] == KEY


class InfoCard:
    """The banner, QR code and who plays what, drawn flat and warped into the info
    region's quad; remade only when what it says or where it goes changes."""

    def __init__(self, banner: Banner, text: TextCache) -> None:
        self._banner = banner
        self._text = text
        self._qr: tuple[pygame.Surface, int] | None = None
        self._key: tuple[object, ...] | None = None
        self._flat_key: tuple[object, ...] | None = None
        self._flat: pygame.Surface | None = None
        self.surface: pygame.Surface | None = None
        self.area = pygame.Rect(0, 0, 0, 0)

    def invalidate(self) -> None:
        self._key = None

    def draw(self, screen: pygame.Surface, scene: Scene, mapped: MappedFacade) -> None:
        """The card, over the facade's lights."""
        lines = tuple(legend_lines(scene))
        colors = tuple(view.color for view in scene.tracks)
        free = sum(1 for view in scene.tracks if view.caller is None)
        content = (lines, colors, scene.line_length, free, scene.paused)
        quad = mapped.info
        key = (content, quad, mapped.size)
        if key != self._key or self.surface is None:
            size = flat_size(quad)
            w, h = size
            to_screen = Homography.quad_to_quad(((0, 0), (w, 0), (w, h), (0, h)), quad)
            self.area = bounds(quad).clip(screen.get_rect())
            self.surface = warp(self.flat(size, scene), to_screen, self.area)
            self._key = key
        screen.blit(self.surface, self.area)

    def flat(self, size: tuple[int, int], scene: Scene) -> pygame.Surface:
        """The card, flat, `size` pixels (what a street-level screen shows whole)."""
        lines = tuple(legend_lines(scene))
        free = sum(1 for view in scene.tracks if view.caller is None)
        key = (lines, tuple(v.color for v in scene.tracks), scene.line_length, scene.paused)
        if (key, size) != self._flat_key or self._flat is None:
            self._flat = self._make(size, scene, lines, free)
            self._flat_key = (key, size)
        return self._flat

    def _make(
        self, size: tuple[int, int], scene: Scene, lines: Sequence[LegendLine], free: int
    ) -> pygame.Surface:
        w, h = size
        card = pygame.Surface(size).convert()
        card.fill(BLACK)
        pad = max(2, h // 14)
        right = w - pad
        url = self._banner.keypad_url
        if url:
            if self._qr is None:
                self._qr = qr_surface(url)
            code, modules = self._qr
            side = h - 2 * pad
            placed, _ = place_qr(pygame.Rect(w - pad - side, pad, side, side), modules)
            card.blit(pygame.transform.scale(code, placed.size), placed)
            right = placed.left - pad
        room = max(8, right - pad)
        phone = self._banner.phone
        # Said once: with a number, call (the code beside it is the other way in).
        if phone:
            call = f"Call {phone} to play" + (" · or scan" if url else "")
        else:
            call = "Scan to play" if url else "Play along!"
        rows: list[list[tuple[str, tuple[int, int, int]]]] = [[(call, ACCENT)]]
        if url:
            rows.append([(url.split("://", 1)[-1], TEXT)])
        playing = [
            (f"{line.name} {line.who}  ", rgb(view.color))
            for line, view in zip(lines, scene.tracks, strict=True)
            if line.active
        ]
        if playing:
            rows.append(playing)
        waiting = scene.line_length
        if waiting:
            rows.append([(f"{waiting} waiting", TEXT)])
        elif free and not scene.paused:
            rows.append([(f"{free} free track{'s' if free != 1 else ''}", TEXT)])
        shares = [0.34, 0.2, 0.2, 0.18][: len(rows)]
        y = pad
        for row, share in zip(rows, shares, strict=True):
            whole = "".join(text for text, _ in row)
            px = self._text.fit(whole, round(share * h), room)
            x = pad
            for text, color in row:
                img = self._text.render(text, px, color)
                card.blit(img, (x, y))
                x += img.get_width()
            y += self._text.font(px).get_linesize()
        return card


class WarpedCard:
    """A card made flat for the facade's own proportions (the idle show's invitation),
    centred on the facade and warped onto it with the corner-pin; remade only when the
    card or the mapping changes."""

    def __init__(self) -> None:
        self._key: tuple[object, ...] | None = None
        self.surface: pygame.Surface | None = None
        self.area = pygame.Rect(0, 0, 0, 0)

    def draw(
        self,
        screen: pygame.Surface,
        card_for: Callable[[pygame.Rect], pygame.Surface],
        mapped: MappedFacade,
    ) -> pygame.Rect:
        """The card `card_for` makes for the facade seen flat (a rectangle of its mean
        width and height in pixels), over what is drawn; the rectangle drawn on."""
        outline = mapped.outline
        flat = pygame.Rect((0, 0), flat_size(outline))
        card = card_for(flat)
        key = (card, outline, mapped.size)
        if key != self._key or self.surface is None:
            to_screen = Homography.quad_to_quad(_corners(flat), outline)
            placed = card.get_rect(center=flat.center)
            quad = to_screen.map_quad(_corners(placed))
            self.area = bounds(quad).clip(screen.get_rect())
            here = Homography.quad_to_quad(_corners(card.get_rect()), quad)
            self.surface = warp(card, here, self.area)
            self._key = key
        return screen.blit(self.surface, self.area)


def _corners(r: pygame.Rect) -> Quad:
    return (
        (float(r.left), float(r.top)),
        (float(r.right), float(r.top)),
        (float(r.right), float(r.bottom)),
        (float(r.left), float(r.bottom)),
    )


def flat_size(quad: Quad) -> tuple[int, int]:
    """`quad` seen flat: its mean width and mean height in pixels (at least 8)."""
    top = _length(quad[0], quad[1]) + _length(quad[3], quad[2])
    side = _length(quad[0], quad[3]) + _length(quad[1], quad[2])
    return max(8, round(top / 2)), max(8, round(side / 2))


def _length(a: tuple[float, float], b: tuple[float, float]) -> float:
    return float(np.hypot(a[0] - b[0], a[1] - b[1]))


__all__ = ["KEY", "InfoCard", "MappedBackground", "WarpedCard", "bounds", "warp"]
