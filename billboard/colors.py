"""Reading the config's colours: "#rrggbb" (or "#rgb") into (r, g, b). Shared by the
screen (`billboard.display.palette`) and the light fixtures (`billboard.lights`),
without pygame, which a DMX frame has no need of."""

from __future__ import annotations

from functools import lru_cache
from typing import Final

RGB = tuple[int, int, int]

UNREADABLE: Final[RGB] = (245, 245, 245)  # white, as the screen's text


@lru_cache(maxsize=128)
def rgb(color: str) -> RGB:
    """ "#rrggbb" or "#rgb" → (r, g, b). An unreadable colour gives white
    (`UNREADABLE`), so a typo in the config still lights the window instead of
    stopping the show."""
    text = color.strip().lstrip("#")
    if len(text) == 3:
        text = "".join(ch * 2 for ch in text)
    try:
        value = int(text, 16)
    except ValueError:
        return UNREADABLE
    if len(text) != 6:
        return UNREADABLE
    return (value >> 16) & 255, (value >> 8) & 255, value & 255
