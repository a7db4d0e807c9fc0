"""The billboard's window: opening it on the chosen display, full screen or not, and
saying why when no screen can be had."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

import pygame

WINDOWED_SIZE: Final = (1280, 720)


class Window:
    """A pygame window, full screen on display `display` or a resizable one.

    `size` None means the whole display when full screen, else 1280×720. Raises
    OSError when no display can be opened, rather than drawing into an invisible one."""

    def __init__(
        self, *, size: tuple[int, int] | None, fullscreen: bool, display: int, title: str
    ) -> None:
        self._requested = size
        self._fullscreen = fullscreen
        self.display_index = display
        self._title = title
        self.surface: pygame.Surface = self._open()

    def _open(self) -> pygame.Surface:
        asked = os.environ.get("SDL_VIDEODRIVER", "")
        # A frame goes from our surface to the window as it is (X's shared memory),
        # rather than through an SDL renderer: without a GPU (a projector laptop's
        # llvmpipe, Xvfb) the renderer costs 20–100 ms a frame at 1080p–2160p, the
        # copy 1–5 ms. SDL_FRAMEBUFFER_ACCELERATION=1 asks for the renderer anyway.
        os.environ.setdefault("SDL_FRAMEBUFFER_ACCELERATION", "0")
        try:
            pygame.display.init()
            pygame.font.init()
        except pygame.error as exc:
            raise OSError(no_display(f"SDL could not start its video: {exc}")) from exc
        driver = pygame.display.get_driver()
        # Without a screen SDL quietly falls back to an invisible "offscreen" driver:
        # on a projector that is a black wall, so it is an error unless asked for.
        if driver in ("offscreen", "dummy") and asked != driver:
            pygame.display.quit()
            raise OSError(no_display(f"no screen found (SDL fell back to {driver!r})"))
        count = pygame.display.get_num_displays()
        if not 0 <= self.display_index < count:
            pygame.display.quit()
            raise OSError(f"display {self.display_index} not found: {count} connected")
        return self._set_mode()

    def _set_mode(self) -> pygame.Surface:
        if self._fullscreen:
            size = self._requested or pygame.display.get_desktop_sizes()[self.display_index]
            flags = pygame.FULLSCREEN
        else:
            size = self._requested or WINDOWED_SIZE
            flags = pygame.RESIZABLE
        try:
            screen = pygame.display.set_mode(size, flags, display=self.display_index)
        except pygame.error as exc:
            raise OSError(no_display(f"cannot open a {size[0]}×{size[1]} window: {exc}")) from exc
        pygame.display.set_caption(self._title)
        pygame.mouse.set_visible(not self._fullscreen)  # no cursor on the building
        return screen

    @property
    def fullscreen(self) -> bool:
        """The window fills its display."""
        return self._fullscreen

    def toggle_fullscreen(self) -> None:
        """Switch between full screen and a resizable window."""
        self._fullscreen = not self._fullscreen
        self.surface = self._set_mode()

    def screenshot(self, path: Path) -> None:
        """Save the window's last frame (PNG when `path` ends in .png)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        pygame.image.save(self.surface, str(path))

    def close(self) -> None:
        """Close the window (fonts and other pygame modules are left as they are)."""
        pygame.display.quit()


def no_display(cause: str) -> str:
    """Why no display opened, with the settings that decided it and what to do."""
    driver = os.environ.get("SDL_VIDEODRIVER") or "auto"
    where = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or "unset"
    return (
        f"cannot open a display: {cause} (SDL_VIDEODRIVER={driver}, DISPLAY={where}). "
        "Run the billboard on a machine with a screen, under Xvfb, or with "
        "SDL_VIDEODRIVER=dummy to draw without one."
    )
