"""Frames shown from a presenting thread (billboard/display/present.py): the picture is
the one the single-threaded path draws, pixel for pixel, whatever the frame holds;
the thread's copies and its errors reach the drawing thread."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Literal

import numpy as np
import pygame
import pytest

import billboard.display.present as present
from billboard.controls import HELP_LINES
from billboard.display import Banner, Display, Hud
from billboard.display.present import Presenter, copy_pixels
from billboard.engine import Digit, Engine, EngineConfig, Join
from billboard.engine.scene import Facade, Scene
from billboard.projection import Projection
from tests.billboard.buildings import BAYS, CORNERS, FLOORS, building_windows

BANNER = Banner("+1 555 010 0199", "https://dialjam.example.org/k/dialjam")
SIZE = (960, 540)


def busy_scenes(count: int) -> Iterator[Scene]:
    """`count` scenes 1/60 s apart of 8 callers pressing keys and 2 waiting."""
    engine = Engine(
        EngineConfig(facade=Facade(FLOORS, BAYS), attract_after_s=1e9, idle_s=1e9, turn_s=1e9),
        start=0.0,
    )
    rng = random.Random(3)
    for i in range(10):
        engine.handle(Join(f"c-test{i:02d}", "twilio", f"…{10 + i}"), 0.0)
    for frame in range(1, count + 1):
        now = frame / 60
        for _ in range(2):
            engine.handle(Digit(f"c-test{rng.randrange(8):02d}", rng.choice("0123456789")), now)
        engine.advance(now, 0.1)
        engine.take_updates()
        yield engine.scene(now)


def frames(present_by: Literal["thread", "inline"]) -> list[np.ndarray]:
    """Frames of both layouts with every overlay now and then, a test pattern, a switch
    of layout and back, each read back from the window after it was drawn."""
    building = Projection(CORNERS, building_windows(), info="region")
    display = Display(
        size=SIZE, fullscreen=False, banner=BANNER, projection=building, present=present_by
    )
    hud = Hud(60.0, 2.0, "connected", 2.1, 10, "FluidSynth")
    seen = []
    try:
        for i, scene in enumerate(busy_scenes(60)):
            if i == 25:
                display.set_projection(None)  # the dashboard, a new static layer
            if i == 45:
                display.set_projection(building)
            display.draw(
                scene,
                hud=hud if i % 3 == 0 else None,
                test_pattern=i in (10, 11),
                help_lines=HELP_LINES if i % 11 == 5 else None,
                message="sound muted (M)" if i % 4 == 1 else None,
            )
            if i % 2 == 0 or i in (11, 12, 26, 46):
                seen.append(pygame.surfarray.array3d(display.surface).copy())
    finally:
        display.close()
    return seen


def test_frames_shown_from_the_thread_are_the_single_threaded_frames_pixel_for_pixel(
    video: None,
) -> None:
    inline, threaded = frames("inline"), frames("thread")
    assert len(inline) == len(threaded) > 30
    for index, (one, other) in enumerate(zip(inline, threaded, strict=True)):
        assert np.array_equal(one, other), f"frame {index} differs"
    # The frames differ from one another: the comparison saw the show move.
    assert not np.array_equal(inline[2], inline[3])


def test_the_thread_lays_the_first_layer_again_on_the_canvas_it_showed(video: None) -> None:
    pygame.display.init()
    window = pygame.display.set_mode(SIZE)
    layer = pygame.Surface(SIZE).convert()
    layer.fill((20, 30, 40))
    layer.fill((200, 10, 10), (100, 50, 30, 20))
    presenter = Presenter(window)
    try:
        first = presenter.canvas
        first.fill((1, 1, 1))
        assert not presenter.holds(layer)
        presenter.show(layer)
        second = presenter.canvas
        assert second is not first  # drawn on while the first is shown
        second.fill((0, 0, 255))
        presenter.show(layer)
        presenter.wait()
        assert window.get_at((5, 5))[:3] == (0, 0, 255)  # the last frame, on the window
        assert presenter.canvas is first and presenter.holds(layer)
        assert np.array_equal(pygame.surfarray.array3d(first), pygame.surfarray.array3d(layer))
        presenter.show(None)  # a frame with no static layer: nothing laid after it
        presenter.show(layer)
        presenter.wait()
        assert presenter.canvas is first and not presenter.holds(layer)
    finally:
        presenter.close()


def test_auto_shows_inline_without_a_screen_and_a_thread_when_asked(video: None) -> None:
    auto = Display(size=SIZE, fullscreen=False, banner=BANNER)
    auto.draw(next(busy_scenes(1)))
    assert auto.presenter is None
    auto.close()
    threaded = Display(size=SIZE, fullscreen=False, banner=BANNER, present="thread")
    threaded.draw(next(busy_scenes(1)))
    assert threaded.presenter is not None
    threaded.close()
    assert threaded.presenter is None  # closed with the window


def test_what_the_thread_met_is_raised_on_the_drawing_thread(
    video: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    pygame.display.init()
    window = pygame.display.set_mode(SIZE)
    presenter = Presenter(window)

    def broken(source: pygame.Surface, target: pygame.Surface) -> None:
        raise pygame.error("the window went away")

    monkeypatch.setattr(present, "copy_pixels", broken)
    presenter.show(None)
    with pytest.raises(pygame.error, match="went away"):
        presenter.wait()
    monkeypatch.undo()
    presenter.canvas.fill((9, 8, 7))
    presenter.show(None)  # the thread goes on after an error
    presenter.wait()
    assert window.get_at((5, 5))[:3] == (9, 8, 7)
    presenter.close()


def test_pixels_are_copied_row_by_row_between_surfaces_of_different_pitch(
    video: None,
) -> None:
    pygame.display.init()
    pygame.display.set_mode((8, 8))
    wide = pygame.Surface((40, 30)).convert()
    wide.fill((1, 2, 3))
    wide.fill((200, 100, 50), (10, 5, 20, 20))
    source = wide.subsurface((10, 5, 20, 20))  # rows 40 pixels apart, 20 long
    target = pygame.Surface((20, 20)).convert()
    copy_pixels(source, target)
    assert np.array_equal(pygame.surfarray.array3d(target), pygame.surfarray.array3d(source))
    around = pygame.Surface((40, 30)).convert()
    around.fill((0, 0, 0))
    copy_pixels(target, around.subsurface((3, 4, 20, 20)))
    assert around.get_at((3, 4))[:3] == (200, 100, 50)
    assert around.get_at((23, 4))[:3] == (0, 0, 0)  # nothing past the row's end
    with pytest.raises(ValueError, match="differ"):
        copy_pixels(target, pygame.Surface((20, 21)).convert())
    with pytest.raises(ValueError, match="differ"):
        copy_pixels(target, pygame.Surface((20, 20), pygame.SRCALPHA))
