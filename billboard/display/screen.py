"""`Display`: one engine `Scene` in, one projected frame out, in a fixed order of
layers (see the package's docstring for what each holds)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Literal

import pygame

from billboard.engine.scene import Scene
from billboard.projection import MappedFacade, Projection

from .background import Background
from .calibration_view import CalibrationOverlay, Underlay, draw_calibration
from .content import Banner, Hud
from .facade import FacadeLights
from .glows import Glows
from .layout import Layout, WindowRect, compute_layout
from .mapped import InfoCard, MappedBackground, WarpedCard, bounds
from .overlays import Overlays
from .panel import Legend, draw_beat, draw_status
from .present import Presenter
from .street import StreetScreen
from .text import TextCache
from .window import Window

Present = Literal["auto", "thread", "inline"]


class Display:
    """A pygame window (full screen on display `display` by default) that draws scenes.

    `size` None means the whole display when full screen, else 1280×720. `windows`
    gives the real building's window rectangles (see `window_rects`). With
    `projection` the whole output is the building (see `mapped`), else the dashboard
    is drawn. Raises OSError when no display can be opened, rather than drawing into
    an invisible one.

    `present` says how a frame goes to the screen: "thread" draws it on a canvas
    and shows it from a thread of its own while the next is drawn (see `present`),
    "inline" draws on the window's surface and flips before `draw` returns; "auto"
    (the default) is inline unless ``DIALJAM_PRESENT=thread`` asks for the thread,
    which it then takes on a full-screen window under X11 only (a resizable window's
    surface may be remade under the thread's copy; other drivers may want their
    window shown from the main thread). Inline by default: on the shared 2-core
    machine it was measured on, the thread's frames were steadier at 1080p but slower
    at 2160p (see `present`; bench/frame_time.py prints both in one run: run it on
    the projector)."""

    def __init__(
        self,
        *,
        size: tuple[int, int] | None = None,
        fullscreen: bool = True,
        display: int = 0,
        banner: Banner,
        windows: Sequence[WindowRect] | None = None,
        projection: Projection | None = None,
        present: Present = "auto",
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
        self._projection = projection
        self._mapped: MappedFacade | None = None
        self.layout = self._compute_layout()
        self._background = Background(banner, given, self._text)
        self._mapped_background = MappedBackground()
        self._info = InfoCard(banner, self._text)
        self._street_card = InfoCard(banner, self._text)
        self._invitation = WarpedCard()  # the idle show's, on a mapped facade
        self._underlay = Underlay()
        self._street: StreetScreen | None = None
        self.street_problem: str | None = None  # why info = "window" shows nothing
        self._glows = Glows()
        self._lights = FacadeLights(self._text)
        self._legend = Legend(self._text)
        self._overlays = Overlays(self._text)
        self._present = present
        self._presenter: Presenter | None = None
        self._first_layer: pygame.Surface | None = None

    # -- the projection -----------------------------------------------------------------

    @property
    def projection(self) -> Projection | None:
        """The mapping drawn (None: the dashboard)."""
        return self._projection

    @property
    def mapped(self) -> MappedFacade | None:
        """The mapping in this output's pixels: the facade's outline and every window's
        quad, and facade coordinates → pixels (None: the dashboard)."""
        return self._mapped

    def set_projection(self, projection: Projection | None) -> None:
        """Draw `projection` from the next frame (None: the dashboard)."""
        if projection == self._projection:
            return
        self._projection = projection
        self.layout = self._compute_layout()
        self._overlays.clear()
        self.street_problem = None  # a new mapping may name another display: try again
        if projection is None:
            self._close_street()
        # The glows are sized for one layout's windows: both backgrounds refit them.
        self._background.invalidate()
        self._mapped_background.invalidate()
        self._info.invalidate()

    def show_cursor(self, shown: bool) -> None:
        """Show the mouse pointer (calibrating) or hide it on a full screen."""
        pygame.mouse.set_visible(shown or not self._window.fullscreen)

    def _compute_layout(self) -> Layout:
        if self._projection is None:
            self._mapped = None
            return compute_layout(self.size, with_qr=self.banner.keypad_url is not None)
        # The overlays (HUD, message, help) go over the building's bounding box.
        self._mapped = self._projection.mapped(self.size)
        box = bounds(self._mapped.outline).clip(pygame.Rect((0, 0), self.size))
        if box.width < 8 or box.height < 8:
            box = pygame.Rect((0, 0), self.size)
        return replace(compute_layout(self.size, with_qr=False), facade=box)

    # -- the window ---------------------------------------------------------------------

    def describe(self) -> str:
        """Which screen this is, for the operator: display, size, full screen or not."""
        w, h = self.size
        if pygame.display.get_driver() in ("dummy", "offscreen"):
            return f"headless ({w}×{h}, SDL's {pygame.display.get_driver()} video: no screen)"
        mode = "full screen" if self._window.fullscreen else "a window"
        return f"display {self._window.display_index}, {w}×{h}, {mode}"

    @property
    def first_layer(self) -> pygame.Surface | None:
        """The whole-screen layer the last frame began with: the static layer (or the
        test pattern), everything of the frame that is not drawn anew each time."""
        return self._first_layer

    @property
    def presenter(self) -> Presenter | None:
        """The thread showing frames (None: shown inline, or no frame drawn yet)."""
        return self._presenter

    def _stop_presenting(self) -> None:
        """Let the frames handed over reach the screen, then stop the thread."""
        if self._presenter is not None:
            self._presenter.close()
            self._presenter = None

    def toggle_fullscreen(self) -> None:
        """Switch between full screen and a resizable window."""
        self._stop_presenting()
        self._window.toggle_fullscreen()
        self._relayout(self._window.surface)

    def screenshot(self, path: Path) -> None:
        """Save the last frame drawn (PNG when `path` ends in .png)."""
        if self._presenter is not None:
            self._presenter.wait()
        self._window.screenshot(path)

    def close(self) -> None:
        """Close the window (fonts and other pygame modules are left as they are)."""
        self._stop_presenting()
        self._close_street()
        self._glows.close()
        self._window.close()

    def _close_street(self) -> None:
        if self._street is not None:
            self._street.close()
            self._street = None

    def _draw_street(self, scene: Scene, display: int) -> None:
        """The info on its own window (opened at the first frame that needs it)."""
        if self._street is not None and self._street.display != display:
            self._close_street()
        if self._street is None and self.street_problem is None:
            try:
                title = f"{self.banner.title} · call to play"
                self._street = StreetScreen(self._street_card, display, title)
            except OSError as exc:
                self.street_problem = str(exc)  # said once, in the HUD's place: see frontend
        if self._street is not None:
            self._street.draw(scene)

    @property
    def surface(self) -> pygame.Surface:
        """The window's surface, holding the last frame drawn (once it is shown)."""
        if self._presenter is not None:
            self._presenter.wait()
        return self._window.surface

    def _relayout(self, screen: pygame.Surface) -> None:
        self._stop_presenting()
        self._window.surface = screen
        self.size = screen.get_size()
        self.layout = self._compute_layout()
        self._background.invalidate()
        self._mapped_background.invalidate()
        self._info.invalidate()
        self._glows.clear()
        self._lights.clear()
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
        calibration: CalibrationOverlay | None = None,
    ) -> None:
        """Draw one frame of `scene` with the overlays asked for, and show it. With
        `calibration` the projection being calibrated is drawn, with its handles."""
        current = pygame.display.get_surface()
        if current is None:
            raise OSError("the billboard's window was closed")
        if current is not self._window.surface or current.get_size() != self.size:
            self._relayout(current)  # the window was resized (VIDEORESIZE) or re-created
        if self._presenter is None and self._shown_from_thread():
            self._presenter = Presenter(current)
        screen = current if self._presenter is None else self._presenter.canvas
        self._first_layer = None
        if calibration is not None:
            self.set_projection(calibration.state.projection)
        if self._projection is not None:
            self._draw_projection(screen, scene, test_pattern, calibration)
        else:
            self._draw_dashboard(screen, scene, test_pattern)
        lay = self.layout
        if hud is not None:
            self._overlays.draw_hud(screen, hud, lay)
        if help_lines:
            _blit_center(screen, self._overlays.help(tuple(help_lines), lay), screen.get_rect())
        if message:
            self._overlays.draw_message(screen, message, lay)
        if self._presenter is not None:
            self._presenter.show(self._first_layer)
        else:
            pygame.display.flip()

    def _shown_from_thread(self) -> bool:
        """Frames go to the screen from a presenting thread (see the class's docstring;
        asked again after a switch between full screen and a window)."""
        if self._present == "auto":
            asked = os.environ.get("DIALJAM_PRESENT", "inline") == "thread"
            return asked and pygame.display.get_driver() == "x11" and self._window.fullscreen
        return self._present == "thread"

    def _lay_first(self, screen: pygame.Surface, layer: pygame.Surface) -> None:
        """The frame's first layer, whole-screen (the static layer or the test pattern),
        on `screen`: a presenter's canvas may hold it already. (Such a layer is never
        drawn on once made: a new one is made instead, so holding the same surface is
        holding the same pixels.)"""
        self._first_layer = layer
        if self._presenter is None or not self._presenter.holds(layer):
            screen.blit(layer, (0, 0))

    def _draw_dashboard(self, screen: pygame.Surface, scene: Scene, test_pattern: bool) -> None:
        lay, background = self.layout, self._background
        if background.update(lay, scene):
            # New windows, maybe of new sizes; the legend's rows follow the loop length.
            self._legend.clear()
            self._lights.clear()
            self._glows.fit(background.windows_px)
            self._glows.prepare(scene, background.windows_px)
        if test_pattern:
            pattern = self._overlays.test_pattern(
                lay, background.windows_px, self._window.display_index
            )
            self._lay_first(screen, pattern)
            return
        assert background.surface is not None
        self._lay_first(screen, background.surface)
        self._lights.draw(screen, scene, background.panes, self._glows, unit=lay.unit)
        draw_beat(screen, scene, lay.beat, background.beat_cells, background.beat_past)
        self._legend.draw(screen, scene, lay)
        draw_status(screen, scene, lay, self._text, phone=bool(self.banner.phone))
        if scene.attract:  # the idle show: a large code in front, said once
            invite = self._overlays.invitation(self.banner, lay, lay.facade)
            _blit_center(screen, invite, lay.facade)
        else:
            code = background.qr_card(lay)
            if code is not None:
                screen.blit(*code)
            self._lights.draw_labels(screen, scene, background.panes, lay.unit)

    def _draw_projection(
        self,
        screen: pygame.Surface,
        scene: Scene,
        test_pattern: bool,
        calibration: CalibrationOverlay | None,
    ) -> None:
        mapped, lay, background = self._mapped, self.layout, self._mapped_background
        assert mapped is not None
        if background.update(mapped, self._glows):
            self._lights.clear()
            boxes = [pane.box for pane in background.panes]
            self._glows.prepare(scene, boxes, quick=calibration is not None)
        if test_pattern:
            boxes = [pane.box for pane in background.panes]
            pattern = self._overlays.test_pattern(lay, boxes, self._window.display_index)
            self._lay_first(screen, pattern)
        else:
            assert background.surface is not None
            self._lay_first(screen, background.surface)
            unit = lay.unit
            self._lights.draw(
                screen, scene, background.panes, self._glows, unit=unit, mask=background.mask
            )
            info = mapped.projection.info
            idle_show = scene.attract and calibration is None and info != "window"
            if info == "region" and not idle_show:
                self._info.draw(screen, scene, mapped)
            if idle_show:  # a large code in front of the building, said once, on the wall
                self._invitation.draw(
                    screen,
                    lambda flat: self._overlays.invitation(self.banner, lay, flat),
                    mapped,
                )
            else:
                self._lights.draw_labels(screen, scene, background.panes, unit)
        if mapped.projection.info == "window":
            self._draw_street(scene, mapped.projection.info_display)
        else:
            self._close_street()
        if calibration is None:
            return
        lines = calibration.lines
        if calibration.underlay is not None:
            try:
                screen.blit(self._underlay.surface(calibration.underlay, self.size), (0, 0))
            except OSError as exc:
                lines = (*lines, str(exc))
        draw_calibration(screen, calibration, self._text, lay.unit)
        # The card keeps to the half of the output away from what is being moved.
        card = self._overlays.card(lines, lay)
        state = calibration.state
        handle_y = state.handle(state.selected)[1] if state.selected is not None else 0.0
        if handle_y < self.size[1] / 2:
            place = card.get_rect(midbottom=(self.size[0] // 2, self.size[1] - lay.margin))
        else:
            place = card.get_rect(midtop=(self.size[0] // 2, lay.margin))
        screen.blit(card, place)


def _blit_center(screen: pygame.Surface, surface: pygame.Surface, area: pygame.Rect) -> None:
    screen.blit(surface, surface.get_rect(center=area.center))
