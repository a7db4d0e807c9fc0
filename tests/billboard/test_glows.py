"""The lit windows' glows (billboard/display/glows.py): a frame never makes one (a glow
costs milliseconds), the glows' thread does, the nearest size of the colour lent
meanwhile; what is kept stays within its memory cap; a thread that stops is said once
and the frames make their own from then on."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import pygame
import pytest

import billboard.display.glows as glows_module
from billboard.display.glows import Glow, Glows

RED, BLUE = (230, 40, 40), (40, 90, 230)


@pytest.fixture
def glows(video: None) -> Iterator[Glows]:
    pygame.display.init()
    pygame.display.set_mode((320, 180))
    made = Glows()
    yield made
    made.close()


def made_soon(glows: Glows, key: tuple[object, ...], within_s: float = 30.0) -> bool:
    """`key` is among the glows made before `within_s` pass (the thread's work)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if key in glows.made:
            return True
        time.sleep(0.01)
    return False


def test_a_frame_borrows_the_nearest_size_of_its_colour_while_the_thread_makes_its_own(
    glows: Glows,
) -> None:
    small = glows.glow(RED, 40, 48)  # made before the show
    lent = glows.for_frame(RED, 64, 48)
    assert lent is small  # nothing made in the frame: the nearest red one, lent
    assert glows.for_frame(BLUE, 64, 48) is None  # no blue one to lend: no spill yet
    assert made_soon(glows, (RED, 64, 48)) and made_soon(glows, (BLUE, 64, 48))
    own = glows.for_frame(RED, 64, 48)
    assert isinstance(own, Glow) and own is not small
    assert own.size[0] > small.size[0]  # a wider window's halo is wider


def test_glows_kept_stay_within_the_cap_and_the_last_drawn_are_kept(glows: Glows) -> None:
    each = glows.glow(RED, 40, 40).bytes
    glows = Glows(kept_bytes=3 * each + each // 2)
    glows.glow(RED, 40, 40)
    glows.glow(BLUE, 40, 40)
    glows.for_frame(RED, 40, 40)  # red drawn last: blue is now the least recent
    glows.glow((10, 200, 10), 40, 40)
    glows.glow((200, 200, 10), 40, 40)
    assert glows.bytes <= 3 * each + each // 2
    assert (RED, 40, 40) in glows.made and (BLUE, 40, 40) not in glows.made
    assert len(glows.made) == 3


def test_a_glows_thread_that_stops_is_said_once_and_frames_make_their_own(
    glows: Glows, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = glows_module.make_glow

    def fails_in_the_thread(*args: object) -> Glow:
        if threading.current_thread().name == "dialjam-glows":
            raise MemoryError("no room for a glow")
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(glows_module, "make_glow", fails_in_the_thread)
    with caplog.at_level(logging.ERROR, logger="dialjam.display"):
        assert glows.for_frame(RED, 40, 40) is None
        deadline = time.monotonic() + 30.0
        while glows.problem is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert glows.problem is not None and "MemoryError" in glows.problem
        made = glows.for_frame(RED, 40, 40)  # made in the frame, as before the thread
        assert isinstance(made, Glow) and (RED, 40, 40) in glows.made
        glows.for_frame(BLUE, 40, 40)
    said = [r for r in caplog.records if "making thread stopped" in r.getMessage()]
    assert len(said) == 1


def test_sizes_are_bucketed_in_steps_that_grow_with_the_windows(glows: Glows) -> None:
    glows.fit([pygame.Rect(0, 0, 70, 100), pygame.Rect(0, 0, 69, 96)])  # a 1080p building
    assert glows.bucket(69, 96) == (72, 96)
    glows.fit([pygame.Rect(0, 0, 140, 200), pygame.Rect(0, 0, 137, 190)])  # at 2160p
    assert glows.bucket(137, 190) == (144, 192)  # steps of 16: the same look, fewer glows
