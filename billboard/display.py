"""The billboard's screen: the only module that draws.

`Display.draw(scene)` turns one engine `Scene` into one projected frame: a dark
facade whose windows glow in the colours of the tracks that lit them, a beat strip
with the playhead, a legend of the instrument tracks (who holds each, the loop each
caller built, the playhead running across it), the waiting line, and a banner with
the phone number to call and the QR code of the keypad. Overlays: a HUD, a test
pattern to align the projector, the help for the keys, and a one-line message.

It has to hold a steady frame rate on a projector laptop with software rendering, so
everything that does not change from frame to frame is drawn once and kept:

- the background (building, unlit windows, banner, QR code, beat-strip cells) is one
  surface, rebuilt only when the window size, the facade grid or the loop length
  changes, and blitted whole each frame;
- window glows are precomputed per colour, window size and one of `GLOW_LEVELS`
  intensities, and added with ``BLEND_ADD``;
- text is rendered once per (string, size, colour) and kept in a small LRU cache;
- each legend row (name, caller, pattern) is a surface rebuilt only when its content
  changes; the per-frame work is the level swatch and the playhead cell.

Pure helpers (`rgb`, `caller_label`, `legend_lines`, `compute_layout`) hold the
decisions a test wants to check without pixels.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Final

import numpy as np
import pygame
import segno

from billboard.engine.scene import Facade, Scene, TrackView

RGB = tuple[int, int, int]
WindowRect = tuple[float, float, float, float]  # x, y, w, h as fractions of the facade

# A projector adds light: black is "off", so the background stays black and only the
# building's outline, windows and text cost light (and contrast) on the wall.
BLACK: Final[RGB] = (0, 0, 0)
BUILDING: Final[RGB] = (16, 18, 26)
CORNICE: Final[RGB] = (38, 42, 58)
WINDOW_OFF: Final[RGB] = (30, 34, 48)
WINDOW_FRAME: Final[RGB] = (58, 64, 86)
CELL_OFF: Final[RGB] = (40, 44, 60)
CELL_PAST: Final[RGB] = (90, 96, 120)
TEXT: Final[RGB] = (245, 245, 245)
TEXT_DIM: Final[RGB] = (140, 146, 164)
ACCENT: Final[RGB] = (255, 204, 64)
ALERT: Final[RGB] = (255, 96, 64)
GRID_LINE: Final[RGB] = (70, 70, 70)

HALO_BUCKET: Final = 8  # pixels: window sizes that share a halo
GLOW_LEVELS: Final = 24  # intensity steps of a glow: smooth enough for a 0.35 s decay
HALO_STRENGTH: Final = 180  # of 255: how much of a window's light spills around it
TEXT_CACHE_SIZE: Final = 384  # the HUD's numbers change every frame; the rest rarely
WINDOWED_SIZE: Final = (1280, 720)
QR_BORDER: Final = 4  # ISO/IEC 18004 asks for a quiet zone of 4 modules
MAX_WAITING_DOTS: Final = 12


@dataclass(frozen=True, slots=True)
class Banner:
    """What the street needs to join in: a number to call and a code to scan."""

    phone: str | None  # shown in full: it is the installation's own number
    keypad_url: str | None  # drawn as a QR code
    title: str = "dialjam"


@dataclass(frozen=True, slots=True)
class Hud:
    """The operator's numbers, drawn over the facade when the HUD is on."""

    fps: float
    frame_ms: float
    relay: str
    latency_ms: float | None
    callers: int
    midi_port: str | None
    extra: Mapping[str, str] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """The HUD as text, one line per figure."""
        latency = "–" if self.latency_ms is None else f"{self.latency_ms:.1f} ms"
        out = [
            f"{self.fps:5.1f} fps   frame {self.frame_ms:4.1f} ms",
            f"relay    {self.relay}",
            f"latency  {latency}  (event to note)",
            f"callers  {self.callers}",
            f"MIDI     {self.midi_port or 'none'}",
        ]
        out += [f"{k}  {v}" for k, v in self.extra.items()]
        return out


@lru_cache(maxsize=128)
def rgb(color: str) -> RGB:
    """ "#rrggbb" or "#rgb" → (r, g, b). An unreadable colour gives white, so a typo in
    the config still lights the window instead of stopping the show."""
    text = color.strip().lstrip("#")
    if len(text) == 3:
        text = "".join(ch * 2 for ch in text)
    try:
        value = int(text, 16)
    except ValueError:
        return TEXT
    if len(text) != 6:
        return TEXT
    return (value >> 16) & 255, (value >> 8) & 255, value & 255


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    t = min(1.0, max(0.0, t))
    return (
        round(a[0] + (b[0] - a[0]) * t),
        round(a[1] + (b[1] - a[1]) * t),
        round(a[2] + (b[2] - a[2]) * t),
    )


def caller_label(display: str | None) -> str:
    """What the building may show of a caller: a nickname, or at most the last two
    digits of a number ("…12"). The engine already cleans both; a label carrying more
    than four digits (a bug upstream) is cut to its last two here too, because the
    facade is public and a phone number on it cannot be taken back."""
    if not display:
        return ""
    digits = [ch for ch in display if ch.isdigit()]
    if len(digits) > 4:
        return "…" + "".join(digits[-2:])
    return display[:16]


@dataclass(frozen=True, slots=True)
class LegendLine:
    """One track as the legend shows it."""

    name: str
    who: str  # caller_label, or "free"
    state: str  # "", "muted", "leaving"
    active: bool  # a caller holds it, or their loop is still fading


def legend_lines(scene: Scene) -> list[LegendLine]:
    """The legend's text for every track of `scene`, in track order."""
    lines = []
    for view in scene.tracks:
        active = view.caller is not None or view.fading
        if view.caller is not None:
            who = caller_label(view.display) or "caller"
        else:
            who = "" if view.fading else "free"
        state = "muted" if view.muted else ("leaving" if view.fading and not view.caller else "")
        lines.append(LegendLine(view.name, who, state, active))
    return lines


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
    legend: pygame.Rect
    line: pygame.Rect  # the waiting line
    status: pygame.Rect  # tempo, key and notices, right of the banner


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
        rest = qr.bottom + m
    else:
        qr = pygame.Rect(panel.right, top, 0, 0)
        scan = pygame.Rect(panel.left, top, 0, 0)
        rest = top
    line_h = max(12, round(0.06 * h))
    legend = pygame.Rect(panel.left, rest, pw, panel.bottom - rest - line_h)
    line = pygame.Rect(panel.left, legend.bottom, pw, line_h)
    return Layout(size, unit, m, banner, facade, beat, panel, qr, scan, legend, line, status)


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


def qr_surface(url: str) -> tuple[pygame.Surface, int]:
    """The QR code of `url` with its quiet zone, one pixel per module (dark on white),
    and the number of modules across (quiet zone included)."""
    code = segno.make(url, error="m", micro=False)
    matrix = np.array(list(code.matrix_iter(scale=1, border=QR_BORDER)), dtype=bool)
    pixels = np.where(matrix, 0, 255).astype(np.uint8)
    # surfarray indexes [x, y]; segno gives rows first.
    surface = pygame.surfarray.make_surface(np.repeat(pixels.T[:, :, None], 3, axis=2))
    return surface, matrix.shape[0]


@dataclass(slots=True)
class _Glow:
    """A lit window at every level: the halo around it (added) and its pane."""

    halos: list[pygame.Surface]  # centred on the window
    panes: list[pygame.Surface]


@dataclass(slots=True)
class _Row:
    """A legend row drawn once, and where its moving parts go."""

    key: tuple[object, ...]
    surface: pygame.Surface
    swatch: pygame.Rect
    cells: list[pygame.Rect]


class _Text:
    """Rendered strings, kept until they fall out of a small LRU cache: a string that
    is on screen every frame is rendered once."""

    def __init__(self) -> None:
        self._fonts: dict[int, pygame.font.Font] = {}
        self._cache: OrderedDict[tuple[str, int, RGB], pygame.Surface] = OrderedDict()

    def font(self, px: int) -> pygame.font.Font:
        px = max(8, px)
        font = self._fonts.get(px)
        if font is None:
            # pygame's default font (FreeSans Bold) ships with pygame: no system fonts
            # needed on the projector laptop, and bold reads well on brick.
            font = self._fonts[px] = pygame.font.Font(None, px)
        return font

    def render(self, text: str, px: int, color: RGB) -> pygame.Surface:
        key = (text, max(8, px), color)
        surface = self._cache.get(key)
        if surface is not None:
            self._cache.move_to_end(key)
            return surface
        surface = self.font(px).render(text, True, color)
        self._cache[key] = surface
        if len(self._cache) > TEXT_CACHE_SIZE:
            self._cache.popitem(last=False)
        return surface

    def strings(self) -> frozenset[str]:
        """The strings held rendered now (everything drawn lately)."""
        return frozenset(text for text, _, _ in self._cache)

    def fit(self, text: str, max_px: int, max_width: int) -> int:
        """The largest size ≤ `max_px` at which `text` fits in `max_width` pixels."""
        px = max(8, max_px)
        width = self.font(px).size(text)[0]
        while width > max_width and px > 8:
            px = max(8, min(px - 1, int(px * max_width / width)))
            width = self.font(px).size(text)[0]
        return px


class Display:
    """A pygame window (full screen on display `display` by default) that draws scenes.

    `size` None means the whole display when full screen, else 1280×720. `windows`
    gives the real building's window rectangles (see `window_rects`). Raises OSError
    when no display can be opened, rather than drawing into an invisible one."""

    def __init__(
        self,
        *,
        size: tuple[int, int] | None = None,
        fullscreen: bool = True,
        display: int = 0,
        banner: Banner,
        windows: Sequence[WindowRect] | None = None,
    ) -> None:
        if windows is not None:
            for rect in windows:
                if len(rect) != 4 or not all(0.0 <= v <= 1.0 for v in rect):
                    raise ValueError(f"a window is (x, y, w, h) in 0…1, not {rect!r}")
        self.banner = banner
        self._windows: tuple[WindowRect, ...] | None = (
            tuple((x, y, w, h) for x, y, w, h in windows) if windows is not None else None
        )
        self._requested = size
        self._fullscreen = fullscreen
        self._display_index = display
        self._text = _Text()
        self._qr: tuple[pygame.Surface, int] | None = None
        self._screen = self._open()
        self.size: tuple[int, int] = self._screen.get_size()
        self.layout = compute_layout(self.size, with_qr=banner.keypad_url is not None)
        self._windows_px: list[pygame.Rect] = []
        self._background: pygame.Surface | None = None
        self._background_key: tuple[object, ...] | None = None
        self._glows: dict[tuple[RGB, int, int], _Glow] = {}
        self._pane_cache: dict[RGB, list[pygame.Surface]] = {}
        self._pane_size = (1, 1)
        self._rows: dict[int, _Row] = {}
        self._overlays: dict[tuple[object, ...], pygame.Surface] = {}
        self._beat_past: pygame.Surface | None = None
        self._beat_cells: list[pygame.Rect] = []
        self._qr_placed: tuple[pygame.Rect, int] | None = None

    # -- the window ---------------------------------------------------------------------

    def _open(self) -> pygame.Surface:
        asked = os.environ.get("SDL_VIDEODRIVER", "")
        try:
            pygame.display.init()
            pygame.font.init()
        except pygame.error as exc:
            raise OSError(_no_display(f"SDL could not start its video: {exc}")) from exc
        driver = pygame.display.get_driver()
        # Without a screen SDL quietly falls back to an invisible "offscreen" driver:
        # on a projector that is a black wall, so it is an error unless asked for.
        if driver in ("offscreen", "dummy") and asked != driver:
            pygame.display.quit()
            raise OSError(_no_display(f"no screen found (SDL fell back to {driver!r})"))
        count = pygame.display.get_num_displays()
        if not 0 <= self._display_index < count:
            pygame.display.quit()
            raise OSError(f"display {self._display_index} not found: {count} connected")
        return self._set_mode()

    def _set_mode(self) -> pygame.Surface:
        if self._fullscreen:
            size = self._requested or pygame.display.get_desktop_sizes()[self._display_index]
            flags = pygame.FULLSCREEN
        else:
            size = self._requested or WINDOWED_SIZE
            flags = pygame.RESIZABLE
        try:
            screen = pygame.display.set_mode(size, flags, display=self._display_index)
        except pygame.error as exc:
            raise OSError(_no_display(f"cannot open a {size[0]}×{size[1]} window: {exc}")) from exc
        pygame.display.set_caption(f"{self.banner.title} billboard")
        pygame.mouse.set_visible(not self._fullscreen)  # no cursor on the building
        return screen

    def toggle_fullscreen(self) -> None:
        """Switch between full screen and a resizable window."""
        self._fullscreen = not self._fullscreen
        self._relayout(self._set_mode())

    def screenshot(self, path: Path) -> None:
        """Save the last frame drawn (PNG when `path` ends in .png)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        pygame.image.save(self._screen, str(path))

    def close(self) -> None:
        """Close the window (fonts and other pygame modules are left as they are)."""
        pygame.display.quit()

    @property
    def fullscreen(self) -> bool:
        """Whether the window covers the whole display."""
        return self._fullscreen

    @property
    def surface(self) -> pygame.Surface:
        """The surface frames are drawn on (the window's)."""
        return self._screen

    @property
    def qr_placement(self) -> tuple[pygame.Rect, int] | None:
        """Where the QR code was drawn (quiet zone included) and its module size in
        pixels, or None without a keypad URL."""
        return self._qr_placed

    @property
    def windows_px(self) -> list[pygame.Rect]:
        """The facade's windows in screen pixels, as last drawn (index floor*bays+bay)."""
        return list(self._windows_px)

    @property
    def rendered_text(self) -> frozenset[str]:
        """The strings this display has drawn lately: all of them since the last
        layout, up to `TEXT_CACHE_SIZE` (the privacy test reads it)."""
        return self._text.strings()

    def _relayout(self, screen: pygame.Surface | None = None) -> None:
        if screen is not None:
            self._screen = screen
        self.size = self._screen.get_size()
        self.layout = compute_layout(self.size, with_qr=self.banner.keypad_url is not None)
        self._background_key = None
        self._glows.clear()
        self._pane_cache.clear()
        self._rows.clear()
        self._overlays.clear()

    # -- one frame ----------------------------------------------------------------------

    def draw(
        self,
        scene: Scene,
        *,
        hud: Hud | None = None,
        test_pattern: bool = False,
        help_lines: Sequence[str] | None = None,
        message: str | None = None,
    ) -> None:
        """Draw one frame of `scene` with the overlays asked for, and show it."""
        current = pygame.display.get_surface()
        if current is None:
            raise OSError("the billboard's window was closed")
        if current is not self._screen or current.get_size() != self.size:
            self._relayout(current)  # the window was resized (VIDEORESIZE) or re-created
        screen = self._screen
        self._ensure_background(scene)
        if test_pattern:
            screen.blit(self._test_pattern(), (0, 0))
        else:
            assert self._background is not None
            screen.blit(self._background, (0, 0))
            self._draw_lights(scene)
            self._draw_beat(scene)
            self._draw_legend(scene)
            self._draw_status(scene)
            if scene.attract:
                self._blit_center(self._invitation(), self.layout.facade)
        if hud is not None:
            self._draw_hud(hud)
        if help_lines:
            self._blit_center(self._help(tuple(help_lines)), screen.get_rect())
        if message:
            self._draw_message(message)
        pygame.display.flip()

    def _px(self, fraction: float) -> int:
        """A font size as a fraction of the window's height."""
        return max(8, round(fraction * self.size[1]))

    # -- the static layer ---------------------------------------------------------------

    def _ensure_background(self, scene: Scene) -> None:
        key = (self.size, scene.facade.floors, scene.facade.bays, scene.loop_steps)
        if key == self._background_key and self._background is not None:
            return
        lay = self.layout
        self._windows_px = window_rects(lay.facade, scene.facade, self._windows)
        bg = pygame.Surface(self.size).convert()
        bg.fill(BLACK)
        self._paint_building(bg)
        self._paint_banner(bg)
        self._paint_qr(bg)
        self._paint_beat_cells(bg, scene.loop_steps)
        self._background, self._background_key = bg, key
        self._rows.clear()
        widest = max((r.width for r in self._windows_px), default=1)
        tallest = max((r.height for r in self._windows_px), default=1)
        if (widest, tallest) != self._pane_size:
            self._pane_size = (widest, tallest)
            self._glows.clear()
            self._pane_cache.clear()
        self._prepare_glows(scene)

    def _paint_building(self, bg: pygame.Surface) -> None:
        lay = self.layout
        frame = max(1, round(2 * lay.unit))
        if self._windows is None:  # a drawn building; on a real one the wall is the building
            bg.fill(BUILDING, lay.facade)
            cornice = pygame.Rect(lay.facade.x, lay.facade.y, lay.facade.width, frame * 3)
            bg.fill(CORNICE, cornice)
        for rect in self._windows_px:
            bg.fill(WINDOW_OFF, rect)
            pygame.draw.rect(bg, WINDOW_FRAME, rect, frame)

    def _paint_banner(self, bg: pygame.Surface) -> None:
        lay = self.layout
        b = self.banner
        title_px = self._px(0.06)
        title = self._text.render(b.title, title_px, ACCENT)
        bg.blit(title, (lay.margin, lay.banner.centery - title.get_height() // 2))
        left = lay.margin * 2 + title.get_width()
        room = lay.status.left - lay.margin - left
        call = f"Call {b.phone} to play" if b.phone else "Scan the code to play"
        px = self._text.fit(call, self._px(0.085), room)
        text = self._text.render(call, px, TEXT)
        bg.blit(text, (left, lay.banner.centery - text.get_height() // 2))
        rule = max(1, round(2 * lay.unit))
        bg.fill(WINDOW_FRAME, (0, lay.banner.bottom - rule, self.size[0], rule))

    def _paint_qr(self, bg: pygame.Surface) -> None:
        lay = self.layout
        url = self.banner.keypad_url
        self._qr_placed = None
        if not url or lay.qr.width <= 0:
            return
        if self._qr is None:
            self._qr = qr_surface(url)
        code, modules = self._qr
        # Whole pixels per module (nearest neighbour): a scaled, blurred code scans badly.
        module = max(1, lay.qr.width // modules)
        side = module * modules
        placed = pygame.Rect(0, 0, side, side)
        placed.center = lay.qr.center
        bg.blit(pygame.transform.scale(code, (side, side)), placed)
        self._qr_placed = (placed, module)
        # The caption beside it: what it is for, and the address for those who type.
        scan = lay.scan
        head = self._text.render(
            "Scan to play", self._text.fit("Scan to play", self._px(0.05), scan.width), TEXT
        )
        bg.blit(head, (scan.x, scan.y + scan.height // 5))
        shown = url.split("://", 1)[-1]
        small = self._text.render(
            shown, self._text.fit(shown, self._px(0.03), scan.width), TEXT_DIM
        )
        bg.blit(small, (scan.x, scan.y + scan.height // 5 + head.get_height() + lay.margin // 2))

    def _paint_beat_cells(self, bg: pygame.Surface, loop_steps: int) -> None:
        lay = self.layout
        steps = max(1, loop_steps)
        area = lay.beat
        gap = max(1, round(3 * lay.unit))
        cell_w = (area.width - gap * (steps - 1)) / steps
        self._beat_cells = []
        past = pygame.Surface(area.size).convert()
        past.fill(BLACK)
        for i in range(steps):
            x = round(i * (cell_w + gap))
            # Beats (every 4th step) stand taller: the eye counts 1-2-3-4 from the wall.
            inset = 0 if i % 4 == 0 else area.height // 4
            cell = pygame.Rect(
                area.x + x, area.y + inset, max(1, round(cell_w)), area.height - 2 * inset
            )
            self._beat_cells.append(cell)
            bg.fill(TEXT_DIM if i % 16 == 0 else CELL_OFF, cell)
            past.fill(CELL_PAST, cell.move(-area.x, -area.y))
        self._beat_past = past

    # -- the moving parts ---------------------------------------------------------------

    def _glow(self, color: RGB, width: int, height: int) -> _Glow:
        """A `width`×`height` window lit in `color`, precomputed at every level.

        Halos are made for sizes rounded up to `HALO_BUCKET` pixels (a real building's
        windows differ by a few pixels; the blurred edge hides the difference) and
        panes once per colour at the largest window's size, blitted cut to size: so a
        building of many window sizes costs a few surfaces, not hundreds."""
        bw, bh = -(-width // HALO_BUCKET) * HALO_BUCKET, -(-height // HALO_BUCKET) * HALO_BUCKET
        key = (color, bw, bh)
        glow = self._glows.get(key)
        if glow is not None:
            return glow
        pad = max(2, round(0.35 * min(bw, bh)))
        full = pygame.Surface((bw + 2 * pad, bh + 2 * pad)).convert()
        full.fill(BLACK)
        full.fill(color, (pad, pad, bw, bh))
        # Two box blurs approximate a Gaussian; done once per colour and window size.
        radius = max(1, pad // 2)
        full = pygame.transform.box_blur(pygame.transform.box_blur(full, radius), radius)
        full.fill((HALO_STRENGTH,) * 3, special_flags=pygame.BLEND_MULT)
        halos = []
        for level in range(GLOW_LEVELS + 1):
            halo = full.copy()
            k = round(255 * level / GLOW_LEVELS)
            halo.fill((k, k, k), special_flags=pygame.BLEND_MULT)
            halos.append(halo)
        glow = self._glows[key] = _Glow(halos, self._panes(color))
        return glow

    def _panes(self, color: RGB) -> list[pygame.Surface]:
        panes = self._pane_cache.get(color)
        if panes is None:
            # Blitting a solid surface is several times faster than filling the same
            # rectangle (pygame's fill is not vectorised): worth a surface per level.
            panes = []
            for level in range(GLOW_LEVELS + 1):
                pane = pygame.Surface(self._pane_size).convert()
                pane.fill(_mix(WINDOW_OFF, color, level / GLOW_LEVELS))
                panes.append(pane)
            self._pane_cache[color] = panes
        return panes

    def _prepare_glows(self, scene: Scene) -> None:
        """Make the glows of the tracks' colours now, with the background, rather than
        on a frame during the show (a glow costs a few milliseconds to make)."""
        sizes = {(r.width, r.height) for r in self._windows_px}
        buckets = {(-(-w // HALO_BUCKET), -(-h // HALO_BUCKET)) for w, h in sizes}
        if len(buckets) > 4:
            return  # a building of many sizes: make them as they light up
        for view in scene.tracks:
            for w, h in sizes:
                self._glow(rgb(view.color), w, h)

    def _draw_lights(self, scene: Scene) -> None:
        screen = self._screen
        windows = self._windows_px
        bays = scene.facade.bays
        count = len(windows)
        lit: list[tuple[pygame.Rect, _Glow, int]] = []
        for light in scene.lit:
            index = light.floor * bays + light.bay
            if 0 <= index < count and 0 <= light.bay < bays:
                rect = windows[index]
                glow = self._glow(rgb(light.color), rect.width, rect.height)
                level = min(GLOW_LEVELS, max(0, round(light.intensity * GLOW_LEVELS)))
                lit.append((rect, glow, level))
        # Halos first, then the panes, so a neighbour's halo never washes out a pane.
        add = pygame.BLEND_ADD
        for rect, glow, level in lit:
            halo = glow.halos[level]
            corner = (rect.centerx - halo.get_width() // 2, rect.centery - halo.get_height() // 2)
            screen.blit(halo, corner, special_flags=add)
        for rect, glow, level in lit:
            screen.blit(glow.panes[level], rect, (0, 0, rect.width, rect.height))

    def _draw_beat(self, scene: Scene) -> None:
        cells = self._beat_cells
        if not cells or self._beat_past is None:
            return
        pos = scene.step % len(cells)
        bar_start = pos - pos % 16
        area = self.layout.beat
        if pos > bar_start:  # the bar so far, in one blit of the precomputed strip
            x0 = cells[bar_start].x - area.x
            width = cells[pos].x - cells[bar_start].x
            self._screen.blit(self._beat_past, (area.x + x0, area.y), (x0, 0, width, area.height))
        self._screen.fill(TEXT, cells[pos])

    def _draw_legend(self, scene: Scene) -> None:
        lay = self.layout
        tracks = scene.tracks
        if not tracks:
            return
        rows = max(8, len(tracks))
        row_h = lay.legend.height // rows
        steps = max(1, scene.loop_steps)
        pos = scene.step % steps
        for i, (view, line) in enumerate(zip(tracks, legend_lines(scene), strict=True)):
            top = lay.legend.y + i * row_h
            row = self._row(i, view, line, steps, (lay.legend.width, row_h))
            self._screen.blit(row.surface, (lay.legend.x, top))
            color = rgb(view.color)
            if line.active:  # the swatch breathes with the track's last note
                lit = _mix(_mix(BLACK, color, 0.35), color, view.level)
                self._screen.fill(lit, row.swatch.move(lay.legend.x, top))
            cell = row.cells[pos].move(lay.legend.x, top)
            hit = pos in view.pattern
            if hit and line.active:
                self._screen.fill(TEXT, cell)
            else:
                pygame.draw.rect(self._screen, TEXT_DIM, cell, max(1, round(2 * lay.unit)))

    def _row(
        self, index: int, view: TrackView, line: LegendLine, steps: int, size: tuple[int, int]
    ) -> _Row:
        """A legend row without its moving parts, rebuilt only when its content changes."""
        key = (view.color, line, view.pattern if line.active else (), steps, size)
        cached = self._rows.get(index)
        if cached is not None and cached.key == key:
            return cached
        w, h = size
        unit = self.layout.unit
        surface = pygame.Surface(size).convert()
        surface.fill(BLACK)
        color = rgb(view.color)
        shade = color if line.active and not line.state else _mix(BLACK, color, 0.45)
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

    def _draw_status(self, scene: Scene) -> None:
        lay = self.layout
        status = lay.status
        tempo = f"{scene.bpm:.0f} BPM · {scene.key} {scene.scale}"
        img = self._text.render(tempo, self._px(0.042), TEXT)
        y = status.y + status.height // 2 - img.get_height()
        self._screen.blit(img, (status.right - img.get_width(), y))
        y += img.get_height() + lay.margin // 3
        if scene.paused:
            notice = self._text.render("PAUSED · new callers wait", self._px(0.036), ALERT)
            self._screen.blit(notice, (status.right - notice.get_width(), y))
        # The waiting line: how many, and a numbered dot per place.
        line = lay.line
        waiting = scene.line_length
        free = sum(1 for t in scene.tracks if t.caller is None)
        if waiting:
            label = f"{waiting} waiting"
        elif free and not scene.paused:
            label = f"{free} free track{'s' if free != 1 else ''} · call now!"
        else:
            label = "nobody waiting"
        px = self._px(0.034)
        img = self._text.render(label, px, TEXT if waiting or free else TEXT_DIM)
        self._screen.blit(img, (line.x, line.centery - img.get_height() // 2))
        radius = max(3, line.height // 4)
        x = line.x + img.get_width() + radius * 3
        for place in range(1, min(waiting, MAX_WAITING_DOTS) + 1):
            if x + radius > line.right:
                break
            pygame.draw.circle(self._screen, TEXT_DIM, (x, line.centery), radius)
            num = self._text.render(str(place), max(8, round(radius * 1.4)), BLACK)
            self._screen.blit(num, num.get_rect(center=(x, line.centery)))
            x += radius * 3

    # -- overlays -----------------------------------------------------------------------

    def _blit_center(self, surface: pygame.Surface, area: pygame.Rect) -> None:
        self._screen.blit(surface, surface.get_rect(center=area.center))

    def _card(self, lines: Sequence[tuple[str, int, RGB]], alpha: int = 215) -> pygame.Surface:
        """Lines of text on a translucent black card."""
        imgs = [self._text.render(text, px, color) for text, px, color in lines]
        pad = self.layout.margin
        w = max(img.get_width() for img in imgs) + 2 * pad
        h = sum(img.get_height() for img in imgs) + 2 * pad
        card = pygame.Surface((w, h), pygame.SRCALPHA).convert_alpha()
        card.fill((0, 0, 0, alpha))
        pygame.draw.rect(
            card, (*WINDOW_FRAME, 255), card.get_rect(), max(1, round(2 * self.layout.unit))
        )
        y = pad
        for img in imgs:
            card.blit(img, ((w - img.get_width()) // 2, y))
            y += img.get_height()
        return card

    def _cached(
        self, key: tuple[object, ...], make: Callable[[], pygame.Surface]
    ) -> pygame.Surface:
        surface = self._overlays.get(key)
        if surface is None:
            if len(self._overlays) > 32:  # messages come and go; keep a few
                self._overlays.clear()
            surface = self._overlays[key] = make()
        return surface

    def _invitation(self) -> pygame.Surface:
        return self._cached(("invite",), self._make_invitation)

    def _make_invitation(self) -> pygame.Surface:
        phone = self.banner.phone
        room = self.layout.facade.width - 4 * self.layout.margin
        texts = [
            (f"Call {phone} to play!" if phone else "Scan the code to play!", 0.08, ACCENT),
            ("Every key you press becomes a note on this building", 0.04, TEXT),
        ]
        if phone and self.banner.keypad_url:
            texts.append(("… or scan the code with your phone", 0.04, TEXT_DIM))
        lines = [(t, self._text.fit(t, self._px(f), room), c) for t, f, c in texts]
        return self._card(lines, alpha=200)

    def _help(self, lines: tuple[str, ...]) -> pygame.Surface:
        return self._cached(("help", lines), lambda: self._make_help(lines))

    def _make_help(self, lines: tuple[str, ...]) -> pygame.Surface:
        """The keys in two columns: a line "K\tnext key" puts "K" left, the rest right."""
        px = self._px(0.036)
        rows = [line.split("\t", 1) if "\t" in line else ["", line] for line in lines]
        lefts = [self._text.render(left, px, ACCENT) for left, _ in rows]
        rights = [self._text.render(right, px, TEXT) for _, right in rows]
        head = self._text.render("Keys", self._px(0.05), ACCENT)
        pad = self.layout.margin
        col = max(img.get_width() for img in lefts) + pad
        w = max(head.get_width(), col + max(img.get_width() for img in rights)) + 2 * pad
        line_h = max(img.get_height() for img in rights)
        h = head.get_height() + line_h * len(rows) + 3 * pad
        card = _translucent((w, h), 230)
        frame = max(1, round(2 * self.layout.unit))
        pygame.draw.rect(card, (*WINDOW_FRAME, 255), card.get_rect(), frame)
        card.blit(head, (pad, pad))
        y = head.get_height() + 2 * pad
        for left, right in zip(lefts, rights, strict=True):
            card.blit(left, (pad, y))
            card.blit(right, (pad + col, y))
            y += line_h
        return card

    def _draw_message(self, message: str) -> None:
        px = self._px(0.045)
        card = self._cached(
            ("message", message), lambda: self._card([(message, px, TEXT)], alpha=230)
        )
        facade = self.layout.facade
        self._screen.blit(
            card, card.get_rect(midbottom=(facade.centerx, facade.bottom - self.layout.margin))
        )

    def _draw_hud(self, hud: Hud) -> None:
        lay = self.layout
        px = self._px(0.028)
        imgs = [self._text.render(text, px, TEXT) for text in hud.lines()]
        pad = lay.margin // 2
        w = max(img.get_width() for img in imgs) + 2 * pad
        h = sum(img.get_height() for img in imgs) + 2 * pad
        # The backing is sized in 64-pixel steps so a changing number reuses it.
        bw, bh = -(-w // 64) * 64, -(-h // 64) * 64
        backing = self._cached(("hud", bw, bh), lambda: _translucent((bw, bh), 190))
        x, y = lay.facade.x + pad, lay.facade.y + pad
        self._screen.blit(backing, (x, y))
        y += pad
        for img in imgs:
            self._screen.blit(img, (x + pad, y))
            y += img.get_height()

    def _test_pattern(self) -> pygame.Surface:
        return self._cached(("test", len(self._windows_px)), self._make_test_pattern)

    def _make_test_pattern(self) -> pygame.Surface:
        """Grid, corner markers, colour bars and numbered window outlines: everything a
        technician needs to line the projector up with the building."""
        w, h = self.size
        lay = self.layout
        surf = pygame.Surface(self.size).convert()
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
        px = max(8, round(min(r.height for r in self._windows_px) * 0.5)) if self._windows_px else 8
        for index, rect in enumerate(self._windows_px):
            pygame.draw.rect(surf, (0, 255, 255), rect, line)
            num = self._text.render(str(index), px, (0, 255, 255))
            surf.blit(num, num.get_rect(center=rect.center))
        label = f"{w}×{h} · display {self._display_index} · {len(self._windows_px)} windows"
        img = self._text.render(label, self._px(0.04), TEXT)
        surf.blit(img, img.get_rect(midtop=(c[0], round(h * 0.06))))
        return surf


def _translucent(size: tuple[int, int], alpha: int) -> pygame.Surface:
    surface = pygame.Surface(size, pygame.SRCALPHA).convert_alpha()
    surface.fill((0, 0, 0, alpha))
    return surface


def _no_display(cause: str) -> str:
    driver = os.environ.get("SDL_VIDEODRIVER") or "auto"
    where = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or "unset"
    return (
        f"cannot open a display: {cause} (SDL_VIDEODRIVER={driver}, DISPLAY={where}). "
        "Run the billboard on a machine with a screen, under Xvfb, or with "
        "SDL_VIDEODRIVER=dummy to draw without one."
    )
