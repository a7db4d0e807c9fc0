"""What is drawn over the facade on demand: the invitation when nobody plays, the
operator's HUD, the help for the keys, a one-line message, and the test pattern that
lines the projector up with the building. Each is made once and kept until the
window is laid out again."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

import pygame

from .background import qr_surface
from .content import Banner, Hud
from .layout import Layout, place_qr
from .palette import ACCENT, BLACK, GRID_LINE, RGB, TEXT, TEXT_DIM, WINDOW_FRAME
from .text import TextCache

INVITE_SHARE: Final = 0.62  # of the building's height: the idle show's card in front


class Overlays:
    """The overlays, cached by what they show."""

    def __init__(self, text: TextCache) -> None:
        self._text = text
        self._cache: dict[tuple[object, ...], pygame.Surface] = {}

    def clear(self) -> None:
        """Forget every overlay (the window was laid out again)."""
        self._cache.clear()

    def _cached(
        self, key: tuple[object, ...], make: Callable[[], pygame.Surface]
    ) -> pygame.Surface:
        surface = self._cache.get(key)
        if surface is None:
            if len(self._cache) > 32:  # messages come and go; keep a few
                self._cache.clear()
            surface = self._cache[key] = make()
        return surface

    def _card(
        self, lines: Sequence[tuple[str, int, RGB]], lay: Layout, alpha: int = 215
    ) -> pygame.Surface:
        """Lines of text on a translucent black card."""
        imgs = [self._text.render(text, px, color) for text, px, color in lines]
        pad = lay.margin
        w = max(img.get_width() for img in imgs) + 2 * pad
        h = sum(img.get_height() for img in imgs) + 2 * pad
        card = pygame.Surface((w, h), pygame.SRCALPHA).convert_alpha()
        card.fill((0, 0, 0, alpha))
        pygame.draw.rect(card, (*WINDOW_FRAME, 255), card.get_rect(), max(1, round(2 * lay.unit)))
        y = pad
        for img in imgs:
            card.blit(img, ((w - img.get_width()) // 2, y))
            y += img.get_height()
        return card

    def invitation(self, banner: Banner, lay: Layout, area: pygame.Rect) -> pygame.Surface:
        """The idle show's call to play, in front of the building in `area`: the QR code
        as large as it fits, the number, and the address, each said once."""
        return self._cached(("invite", area.size), lambda: self._make_invitation(banner, lay, area))

    def _make_invitation(self, banner: Banner, lay: Layout, area: pygame.Rect) -> pygame.Surface:
        pad = lay.margin
        height = max(8 * pad, round(area.height * INVITE_SHARE))
        url = banner.keypad_url
        side = height - 2 * pad if url else 0
        text_w = max(round(area.width * 0.3), round(area.width * 0.96) - side - 3 * pad)
        if banner.phone:
            texts = [(f"Call {banner.phone}", 0.13, ACCENT)]
            texts.append(("to play · or scan the code" if url else "to play", 0.055, TEXT))
        else:
            texts = [("Scan to play" if url else "Play along!", 0.13, ACCENT)]
        if url:
            texts.append((url.split("://", 1)[-1], 0.06, TEXT))
        texts.append(("Every key you press is a note on this building", 0.04, TEXT_DIM))
        imgs = [
            self._text.render(t, self._text.fit(t, round(f * height * 1.6), text_w), c)
            for t, f, c in texts
        ]
        width = side + max(img.get_width() for img in imgs) + (3 if url else 2) * pad
        card = translucent((width, height), 225)
        if url:
            code, modules = qr_surface(url)
            placed, _ = place_qr(pygame.Rect(pad, pad, side, side), modules)
            card.blit(pygame.transform.scale(code, placed.size), placed)
        x = side + (2 if url else 1) * pad
        gap = pad // 2
        y = (height - sum(img.get_height() for img in imgs) - gap * (len(imgs) - 1)) // 2
        for img in imgs:
            card.blit(img, (x, y))
            y += img.get_height() + gap
        return card

    def card(self, lines: tuple[str, ...], lay: Layout) -> pygame.Surface:
        """`lines` on a card, the first in the accent colour (a title)."""
        px = lay.px(0.03)
        rows = [(t, px, ACCENT if i == 0 else TEXT) for i, t in enumerate(lines)]
        return self._cached(("card", lines), lambda: self._card(rows, lay, alpha=220))

    def help(self, lines: tuple[str, ...], lay: Layout) -> pygame.Surface:
        """The keys' help card."""
        return self._cached(("help", lines), lambda: self._make_help(lines, lay))

    def _make_help(self, lines: tuple[str, ...], lay: Layout) -> pygame.Surface:
        """The keys in two columns: a line "K\tnext key" puts "K" left, the rest right."""
        px = lay.px(0.036)
        rows = [line.split("\t", 1) if "\t" in line else ["", line] for line in lines]
        lefts = [self._text.render(left, px, ACCENT) for left, _ in rows]
        rights = [self._text.render(right, px, TEXT) for _, right in rows]
        head = self._text.render("Keys", lay.px(0.05), ACCENT)
        pad = lay.margin
        col = max(img.get_width() for img in lefts) + pad
        w = max(head.get_width(), col + max(img.get_width() for img in rights)) + 2 * pad
        line_h = max(img.get_height() for img in rights)
        h = head.get_height() + line_h * len(rows) + 3 * pad
        card = translucent((w, h), 230)
        frame = max(1, round(2 * lay.unit))
        pygame.draw.rect(card, (*WINDOW_FRAME, 255), card.get_rect(), frame)
        card.blit(head, (pad, pad))
        y = head.get_height() + 2 * pad
        for left, right in zip(lefts, rights, strict=True):
            card.blit(left, (pad, y))
            card.blit(right, (pad + col, y))
            y += line_h
        return card

    def draw_message(self, screen: pygame.Surface, message: str, lay: Layout) -> None:
        """`message` on a card at the foot of the facade."""
        px = lay.px(0.045)
        card = self._cached(
            ("message", message), lambda: self._card([(message, px, TEXT)], lay, alpha=230)
        )
        facade = lay.facade
        screen.blit(card, card.get_rect(midbottom=(facade.centerx, facade.bottom - lay.margin)))

    def draw_hud(self, screen: pygame.Surface, hud: Hud, lay: Layout) -> None:
        """The HUD's figures at the facade's top left."""
        px = lay.px(0.028)
        imgs = [self._text.render(text, px, TEXT) for text in hud.lines()]
        pad = lay.margin // 2
        w = max(img.get_width() for img in imgs) + 2 * pad
        h = sum(img.get_height() for img in imgs) + 2 * pad
        # The backing is sized in 64-pixel steps so a changing number reuses it.
        bw, bh = -(-w // 64) * 64, -(-h // 64) * 64
        backing = self._cached(("hud", bw, bh), lambda: translucent((bw, bh), 190))
        x, y = lay.facade.x + pad, lay.facade.y + pad
        screen.blit(backing, (x, y))
        y += pad
        for img in imgs:
            screen.blit(img, (x + pad, y))
            y += img.get_height()

    def test_pattern(
        self, lay: Layout, windows: Sequence[pygame.Rect], display_index: int
    ) -> pygame.Surface:
        """The whole window's test pattern for `windows` on display `display_index`."""
        return self._cached(
            ("test", len(windows)), lambda: self._make_test_pattern(lay, windows, display_index)
        )

    def _make_test_pattern(
        self, lay: Layout, windows: Sequence[pygame.Rect], display_index: int
    ) -> pygame.Surface:
        """Grid, corner markers, colour bars and numbered window outlines: everything a
        technician needs to line the projector up with the building."""
        w, h = lay.size
        surf = pygame.Surface(lay.size).convert()
        surf.fill(BLACK)
        line = max(1, round(2 * lay.unit))
        for i in range(1, 16):
            x = round(i * w / 16)
            pygame.draw.line(surf, GRID_LINE, (x, 0), (x, h), 1)
        for j in range(1, 9):
            y = round(j * h / 9)
            pygame.draw.line(surf, GRID_LINE, (0, y), (w, y), 1)
        pygame.draw.rect(surf, TEXT, surf.get_rect(), line)
        # Colour bars (SMPTE order) and a grey ramp across the middle band.
        bars = [
            (255, 255, 255),
            (255, 255, 0),
            (0, 255, 255),
            (0, 255, 0),
            (255, 0, 255),
            (255, 0, 0),
            (0, 0, 255),
            (0, 0, 0),
        ]
        band = pygame.Rect(w // 8, round(h * 0.62), w * 3 // 4, round(h * 0.14))
        for i, color in enumerate(bars):
            x0 = band.x + band.width * i // len(bars)
            x1 = band.x + band.width * (i + 1) // len(bars)
            surf.fill(color, (x0, band.y, x1 - x0, band.height))
        ramp = pygame.Rect(band.x, band.bottom, band.width, round(h * 0.05))
        for i in range(16):
            g = round(255 * i / 15)
            x0 = ramp.x + ramp.width * i // 16
            x1 = ramp.x + ramp.width * (i + 1) // 16
            surf.fill((g, g, g), (x0, ramp.y, x1 - x0, ramp.height))
        # Corner markers: an L in each corner and a different colour per corner, so a
        # mirrored or rotated projection is obvious.
        arm = round(0.08 * h)
        thick = max(2, round(6 * lay.unit))
        corners = [
            ((0, 0), (1, 1), (255, 0, 0)),
            ((w, 0), (-1, 1), (0, 255, 0)),
            ((0, h), (1, -1), (0, 128, 255)),
            ((w, h), (-1, -1), (255, 255, 0)),
        ]
        for (cx, cy), (dx, dy), color in corners:
            x0 = cx if dx > 0 else cx - arm
            y0 = cy if dy > 0 else cy - thick
            surf.fill(color, (x0, y0, arm, thick))
            x0 = cx if dx > 0 else cx - thick
            y0 = cy if dy > 0 else cy - arm
            surf.fill(color, (x0, y0, thick, arm))
        # The centre: a cross and a circle (a circle drawn as an ellipse means the
        # projector's aspect is wrong).
        c = (w // 2, h // 2)
        pygame.draw.circle(surf, TEXT, c, round(0.2 * h), line)
        pygame.draw.line(surf, TEXT, (c[0] - arm, c[1]), (c[0] + arm, c[1]), line)
        pygame.draw.line(surf, TEXT, (c[0], c[1] - arm), (c[0], c[1] + arm), line)
        # The windows, outlined and numbered as listed in the config (0-based).
        px = max(8, round(min(r.height for r in windows) * 0.5)) if windows else 8
        for index, rect in enumerate(windows):
            pygame.draw.rect(surf, (0, 255, 255), rect, line)
            num = self._text.render(str(index), px, (0, 255, 255))
            surf.blit(num, num.get_rect(center=rect.center))
        label = f"{w}×{h} · display {display_index} · {len(windows)} windows"
        img = self._text.render(label, lay.px(0.04), TEXT)
        surf.blit(img, img.get_rect(midtop=(c[0], round(h * 0.06))))
        return surf


def translucent(size: tuple[int, int], alpha: int) -> pygame.Surface:
    """A black surface of `size` at opacity `alpha` (of 255)."""
    surface = pygame.Surface(size, pygame.SRCALPHA).convert_alpha()
    surface.fill((0, 0, 0, alpha))
    return surface
