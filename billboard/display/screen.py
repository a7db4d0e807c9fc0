"""`Display`: one engine `Scene` in, one projected frame out, in a fixed order of
layers (see the package's docstring for what each holds)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pygame

from billboard.engine.scene import Scene

from .background import Background
from .content import Banner, Hud
from .glows import Glows, draw_lights
from .layout import WindowRect, compute_layout
from .overlays import Overlays
from .panel import Legend, draw_beat, draw_status
from .text import TextCache
from .window import Window


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
        given: tuple[WindowRect, ...] | None = (
            tuple((x, y, w, h) for x, y, w, h in windows) if windows is not None else None
        )
        self._text = TextCache()
        self._window = Window(
            size=size, fullscreen=fullscreen, display=display, title=f"{banner.title} billboard"
        )
        self.size: tuple[int, int] = self._window.surface.get_size()
        self.layout = compute_layout(self.size, with_qr=banner.keypad_url is not None)
        self._background = Background(banner, given, self._text)
        self._glows = Glows()
        self._legend = Legend(self._text)
        self._overlays = Overlays(self._text)

    # -- the window ---------------------------------------------------------------------

    def toggle_fullscreen(self) -> None:
        """Switch between full screen and a resizable window."""
        self._window.toggle_fullscreen()
        self._relayout(self._window.surface)

    def screenshot(self, path: Path) -> None:
        """Save the last frame drawn (PNG when `path` ends in .png)."""
        self._window.screenshot(path)

    def close(self) -> None:
        """Close the window (fonts and other pygame modules are left as they are)."""
        self._window.close()

    @property
    def surface(self) -> pygame.Surface:
        """The surface frames are drawn on (the window's)."""
        return self._window.surface

    def _relayout(self, screen: pygame.Surface) -> None:
        self._window.surface = screen
        self.size = screen.get_size()
        self.layout = compute_layout(self.size, with_qr=self.banner.keypad_url is not None)
        self._background.invalidate()
        self._glows.clear()
        self._legend.clear()
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
        if current is not self._window.surface or current.get_size() != self.size:
            self._relayout(current)  # the window was resized (VIDEORESIZE) or re-created
        screen, lay, background = current, self.layout, self._background
        if background.update(lay, scene):
            # New windows, maybe of new sizes; the legend's rows follow the loop length.
            self._legend.clear()
            self._glows.fit(background.windows_px)
            self._glows.prepare(scene, background.windows_px)
        if test_pattern:
            pattern = self._overlays.test_pattern(
                lay, background.windows_px, self._window.display_index
            )
            screen.blit(pattern, (0, 0))
        else:
            assert background.surface is not None
            screen.blit(background.surface, (0, 0))
            draw_lights(screen, scene, background.windows_px, self._glows)
            draw_beat(screen, scene, lay.beat, background.beat_cells, background.beat_past)
            self._legend.draw(screen, scene, lay)
            draw_status(screen, scene, lay, self._text)
            if scene.attract:
                _blit_center(screen, self._overlays.invitation(self.banner, lay), lay.facade)
        if hud is not None:
            self._overlays.draw_hud(screen, hud, lay)
        if help_lines:
            _blit_center(screen, self._overlays.help(tuple(help_lines), lay), screen.get_rect())
        if message:
            self._overlays.draw_message(screen, message, lay)
        pygame.display.flip()


def _blit_center(screen: pygame.Surface, surface: pygame.Surface, area: pygame.Rect) -> None:
    screen.blit(surface, surface.get_rect(center=area.center))
