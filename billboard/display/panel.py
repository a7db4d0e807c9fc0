"""The moving parts beside the facade: the beat strip's playhead, the legend of the
tracks (who holds each, the loop each caller built, the playhead across it) and the
status (tempo, key, pause, the waiting line)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import pygame

from billboard.engine.scene import Scene, TrackView

from .content import LegendLine, legend_lines
from .layout import Layout
from .palette import ACCENT, ALERT, BLACK, CELL_OFF, TEXT, TEXT_DIM, mix, rgb
from .text import TextCache

MAX_WAITING_DOTS: Final = 12


def draw_beat(
    screen: pygame.Surface,
    scene: Scene,
    area: pygame.Rect,
    cells: list[pygame.Rect],
    past: pygame.Surface | None,
) -> None:
    """The bar so far over the beat strip's cells, and the playhead."""
    if not cells or past is None:
        return
    pos = scene.step % len(cells)
    bar_start = pos - pos % 16
    if pos > bar_start:  # the bar so far, in one blit of the precomputed strip
        x0 = cells[bar_start].x - area.x
        width = cells[pos].x - cells[bar_start].x
        screen.blit(past, (area.x + x0, area.y), (x0, 0, width, area.height))
    screen.fill(TEXT, cells[pos])


def draw_status(
    screen: pygame.Surface, scene: Scene, lay: Layout, text: TextCache, *, phone: bool
) -> None:
    """Tempo, key and a pause notice right of the banner; the waiting line under the
    legend, a numbered dot per place (free tracks invite a call only with a `phone`
    number to call)."""
    status = lay.status
    tempo = f"{scene.bpm:.0f} BPM · {scene.key} {scene.scale}"
    img = text.render(tempo, lay.px(0.042), TEXT)
    y = status.y + status.height // 2 - img.get_height()
    screen.blit(img, (status.right - img.get_width(), y))
    y += img.get_height() + lay.margin // 3
    if scene.paused:
        notice = text.render("PAUSED · new callers wait", lay.px(0.036), ALERT)
        screen.blit(notice, (status.right - notice.get_width(), y))
    # The waiting line: how many, and a numbered dot per place.
    line = lay.line
    waiting = scene.line_length
    free = sum(1 for t in scene.tracks if t.caller is None)
    if waiting:
        label = f"{waiting} waiting"
    elif free and not scene.paused:
        invite = "call now!" if phone else "play now!"
        label = f"{free} free track{'s' if free != 1 else ''} · {invite}"
    else:
        label = "nobody waiting"
    px = lay.px(0.034)
    img = text.render(label, px, TEXT if waiting or free else TEXT_DIM)
    screen.blit(img, (line.x, line.centery - img.get_height() // 2))
    radius = max(3, line.height // 4)
    x = line.x + img.get_width() + radius * 3
    for place in range(1, min(waiting, MAX_WAITING_DOTS) + 1):
        if x + radius > line.right:
            break
        pygame.draw.circle(screen, TEXT_DIM, (x, line.centery), radius)
        num = text.render(str(place), max(8, round(radius * 1.4)), BLACK)
        screen.blit(num, num.get_rect(center=(x, line.centery)))
        x += radius * 3


@dataclass(slots=True)
class _Row:
    """A legend row drawn once, and where its moving parts go."""

    key: tuple[object, ...]
    surface: pygame.Surface
    swatch: pygame.Rect
    cells: list[pygame.Rect]


class Legend:
    """The legend, a row per track: each row is a surface rebuilt only when its
    content changes; a frame draws only the level swatch and the playhead cell."""

    def __init__(self, text: TextCache) -> None:
        self._text = text
        self._rows: dict[int, _Row] = {}

    def clear(self) -> None:
        """Forget every row (the layout or the loop changed)."""
        self._rows.clear()

    def draw(self, screen: pygame.Surface, scene: Scene, lay: Layout) -> None:
        """Every track's row, its swatch lit by its last note, its playhead cell."""
        tracks = scene.tracks
        if not tracks:
            return
        rows = max(8, len(tracks))
        row_h = lay.legend.height // rows
        steps = max(1, scene.loop_steps)
        pos = scene.step % steps
        for i, (view, line) in enumerate(zip(tracks, legend_lines(scene), strict=True)):
            top = lay.legend.y + i * row_h
            row = self._row(i, view, line, steps, (lay.legend.width, row_h), lay.unit)
            screen.blit(row.surface, (lay.legend.x, top))
            color = rgb(view.color)
            if line.active:  # the swatch breathes with the track's last note
                lit = mix(mix(BLACK, color, 0.35), color, view.level)
                screen.fill(lit, row.swatch.move(lay.legend.x, top))
            cell = row.cells[pos].move(lay.legend.x, top)
            hit = pos in view.pattern
            if hit and line.active:
                screen.fill(TEXT, cell)
            else:
                pygame.draw.rect(screen, TEXT_DIM, cell, max(1, round(2 * lay.unit)))

    def _row(
        self,
        index: int,
        view: TrackView,
        line: LegendLine,
        steps: int,
        size: tuple[int, int],
        unit: float,
    ) -> _Row:
        """A legend row without its moving parts, rebuilt only when its content changes."""
        key = (view.color, line, view.pattern if line.active else (), steps, size)
        cached = self._rows.get(index)
        if cached is not None and cached.key == key:
            return cached
        w, h = size
        surface = pygame.Surface(size).convert()
        surface.fill(BLACK)
        color = rgb(view.color)
        shade = color if line.active and not line.state else mix(BLACK, color, 0.45)
        swatch_side = max(4, round(h * 0.42))
        pad = max(2, round(h * 0.08))
        swatch = pygame.Rect(0, pad, swatch_side, swatch_side)
        pygame.draw.rect(surface, shade, swatch, max(1, round(3 * unit)))
        text_x = swatch.right + max(4, round(h * 0.2))
        px = max(8, round(h * 0.4))
        name = self._text.render(line.name, px, TEXT if line.active else TEXT_DIM)
        surface.blit(name, (text_x, swatch.centery - name.get_height() // 2))
        state = f"({line.state})" if line.state else ""
        who = " ".join(part for part in (line.who, state) if part)
        if who:
            who_color = ACCENT if line.active and not line.state else TEXT_DIM
            img = self._text.render(who, px, who_color)
            surface.blit(img, (w - img.get_width(), swatch.centery - img.get_height() // 2))
        # The loop as a row of cells: coloured where the caller's hits are.
        gap = max(1, round(2 * unit))
        cell_h = max(3, round(h * 0.26))
        y = swatch.bottom + pad
        cell_w = (w - text_x - gap * (steps - 1)) / steps
        hits = set(view.pattern) if line.active else set()
        cells = []
        for i in range(steps):
            x = text_x + round(i * (cell_w + gap))
            rect = pygame.Rect(x, y, max(1, round(cell_w)), cell_h)
            cells.append(rect)
            surface.fill(shade if i in hits else CELL_OFF, rect)
        row = self._rows[index] = _Row(key, surface, swatch, cells)
        return row
