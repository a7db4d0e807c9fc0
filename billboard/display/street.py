"""The info on a second window (``info = "window"``): for a street-level screen on
another display, the call to play, a large QR code and who plays what, while the
projector's whole output is the building. pygame-ce opens it as a `pygame.Window`
beside the display module's own."""

from __future__ import annotations

from typing import Final

import pygame

from billboard.engine.scene import Scene

from .mapped import InfoCard

# SDL_WINDOWPOS_CENTERED_DISPLAY(n) (SDL_video.h): centred on display n.
_CENTRED_ON: Final = 0x2FFF0000


class StreetScreen:
    """A full-screen window on display `display` showing `card` flat. Raises OSError
    when that display is not connected or the window cannot open."""

    def __init__(self, card: InfoCard, display: int, title: str) -> None:
        count = pygame.display.get_num_displays()
        if not 0 <= display < count:
            raise OSError(f"info display {display} not found: {count} connected")
        size = pygame.display.get_desktop_sizes()[display]
        try:
            self._window = pygame.Window(
                title, size, position=_CENTRED_ON | display, fullscreen_desktop=True
            )
        except pygame.error as exc:
            raise OSError(f"cannot open the info window on display {display}: {exc}") from exc
        self._card = card
        self.display = display

    @property
    def surface(self) -> pygame.Surface:
        return self._window.get_surface()

    def draw(self, scene: Scene) -> None:
        """The card for `scene`, shown."""
        surface = self._window.get_surface()
        surface.blit(self._card.flat(surface.get_size(), scene), (0, 0))
        self._window.flip()

    def close(self) -> None:
        self._window.destroy()
