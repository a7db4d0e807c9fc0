"""Where everything goes: the window split into banner, facade, beat strip and panel,
the facade's windows in pixels, and the QR code's place. Geometry only; nothing is
drawn here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pygame

from billboard.engine.scene import Facade

WindowRect = tuple[float, float, float, float]  # x, y, w, h as fractions of the facade


@dataclass(frozen=True, slots=True)
class Layout:
    """Where everything goes for one window size; every length scales with it."""

    size: tuple[int, int]
    unit: float  # 1.0 at 1080 lines
    margin: int
    banner: pygame.Rect
    facade: pygame.Rect
    beat: pygame.Rect
    panel: pygame.Rect
    qr: pygame.Rect  # square; empty when there is no keypad URL
    scan: pygame.Rect  # the caption beside the QR code
    address: pygame.Rect  # the keypad's address under it, for those who type
    legend: pygame.Rect
    line: pygame.Rect  # the waiting line
    status: pygame.Rect  # tempo, key and notices, right of the banner

    def px(self, fraction: float) -> int:
        """A font size as a fraction of the window's height."""
        return max(8, round(fraction * self.size[1]))


def compute_layout(size: tuple[int, int], *, with_qr: bool = True) -> Layout:
    """Split a window of `size` into the banner, facade, beat strip and side panel."""
    w, h = size
    unit = min(w / 1920, h / 1080)
    m = max(4, round(0.02 * h))
    banner = pygame.Rect(0, 0, w, round(0.14 * h))
    top = banner.bottom + m
    pw = round(0.34 * w)
    panel = pygame.Rect(w - m - pw, top, pw, h - top - m)
    beat_h = max(8, round(0.045 * h))
    fw = panel.left - 2 * m
    facade = pygame.Rect(m, top, fw, h - top - 2 * m - beat_h - m)
    beat = pygame.Rect(m, facade.bottom + m, fw, beat_h)
    status_w = round(0.26 * w)
    status = pygame.Rect(w - m - status_w, banner.top, status_w, banner.height)
    if with_qr:
        side = min(round(0.28 * h), pw // 2)
        qr = pygame.Rect(panel.right - side, top, side, side)
        scan = pygame.Rect(panel.left, top, pw - side - m, side)
        address = pygame.Rect(panel.left, qr.bottom + m // 2, pw, round(0.055 * h))
        rest = address.bottom + m // 2
    else:
        qr = pygame.Rect(panel.right, top, 0, 0)
        scan = pygame.Rect(panel.left, top, 0, 0)
        address = pygame.Rect(panel.left, top, 0, 0)
        rest = top
    line_h = max(12, round(0.06 * h))
    legend = pygame.Rect(panel.left, rest, pw, panel.bottom - rest - line_h)
    line = pygame.Rect(panel.left, legend.bottom, pw, line_h)
    return Layout(
        size, unit, m, banner, facade, beat, panel, qr, scan, address, legend, line, status
    )


def window_rects(
    area: pygame.Rect, facade: Facade, windows: Sequence[WindowRect] | None
) -> list[pygame.Rect]:
    """Every window of the facade in screen pixels, floor by floor (floor 0 at the
    top), bay by bay: the index of (floor, bay) is ``floor * bays + bay``. With
    `windows` (fractions of `area`, e.g. measured on a photo of the real building)
    those are used as given; otherwise an even grid of floors × bays."""
    if windows is not None:
        return [
            pygame.Rect(
                area.x + round(x * area.width),
                area.y + round(y * area.height),
                max(1, round(w * area.width)),
                max(1, round(h * area.height)),
            )
            for x, y, w, h in windows
        ]
    cell_w = area.width / facade.bays
    cell_h = area.height / facade.floors
    win_w, win_h = max(2, round(cell_w * 0.64)), max(2, round(cell_h * 0.58))
    rects = []
    for floor in range(facade.floors):
        for bay in range(facade.bays):
            cx = area.x + (bay + 0.5) * cell_w
            cy = area.y + (floor + 0.5) * cell_h
            rects.append(pygame.Rect(round(cx - win_w / 2), round(cy - win_h / 2), win_w, win_h))
    return rects


def place_qr(area: pygame.Rect, modules: int) -> tuple[pygame.Rect, int]:
    """Where a QR code `modules` modules across (quiet zone included) goes in `area`,
    centred, and its module size in pixels. Whole pixels per module (nearest
    neighbour): a scaled, blurred code scans badly."""
    module = max(1, area.width // modules)
    side = module * modules
    placed = pygame.Rect(0, 0, side, side)
    placed.center = area.center
    return placed, module
