"""Dirty rectangles: a frame restores and shows only the tiles that changed, and the
picture is the same as one drawn whole (pixels read back from SDL's dummy driver)."""

from __future__ import annotations

import random
from collections.abc import Iterator

import numpy as np
import pygame
import pytest

from billboard.display import Banner, Display, Hud
from billboard.display.damage import Damage
from billboard.display.screen import WHOLE_SHARE
from billboard.engine import Digit, Engine, EngineConfig, Join, Leave
from billboard.engine.scene import Facade, Scene
from billboard.projection import Projection
from tests.billboard.buildings import BAYS, CORNERS, FLOORS, building_windows

BANNER = Banner("+1 555 010 0199", "https://dialjam.example.org/k/dialjam")
SIZE = (960, 540)


def test_the_damaged_tiles_cover_every_rectangle_drawn_and_nothing_far_from_them() -> None:
    damage = Damage((200, 100), 10)
    drawn = [pygame.Rect(5, 5, 20, 3), pygame.Rect(12, 6, 30, 30), pygame.Rect(150, 90, 80, 40)]
    damage.add_all(drawn)
    rects = damage.rects()
    covered = np.zeros((200, 100), dtype=bool)
    for rect in rects:
        covered[rect.left : rect.right, rect.top : rect.bottom] = True
    for rect in drawn:
        clipped = rect.clip(pygame.Rect(0, 0, 200, 100))
        assert covered[clipped.left : clipped.right, clipped.top : clipped.bottom].all()
    assert not covered[60:140, :].any()  # between the rectangles nothing is sent
    assert covered.sum() == 22 * 10 * 10  # the 22 tiles touched, whole
    assert all(r.right <= 200 and r.bottom <= 100 for r in rects)  # clipped to the screen


def test_the_rectangles_cover_exactly_the_damaged_tiles_once() -> None:
    rng = random.Random(11)
    for _ in range(50):
        damage = Damage((317, 203), 16)
        expected = np.zeros((317, 203), dtype=bool)
        for _ in range(rng.randrange(12)):
            rect = pygame.Rect(rng.randrange(-20, 317), rng.randrange(-20, 203), 0, 0)
            rect.size = (rng.randrange(1, 120), rng.randrange(1, 90))
            damage.add(rect)
            clipped = rect.clip(pygame.Rect(0, 0, 317, 203))
            if clipped:  # every tile the rectangle touches, whole
                x0, y0 = clipped.left // 16 * 16, clipped.top // 16 * 16
                expected[
                    x0 : clipped.right + (-clipped.right) % 16,
                    y0 : clipped.bottom + (-clipped.bottom) % 16,
                ] = True
        covered = np.zeros((317, 203), dtype=np.int32)
        for r in damage.rects():
            covered[r.left : r.right, r.top : r.bottom] += 1
        assert covered.max(initial=0) <= 1  # no pixel sent twice
        assert np.array_equal(covered == 1, expected)
        assert damage.share() == pytest.approx(expected.sum() / (317 * 203), abs=0.06)


def test_runs_of_tiles_join_into_few_rectangles_and_damage_adds_up() -> None:
    damage = Damage((320, 320), 32)
    damage.add(pygame.Rect(0, 0, 320, 320))
    assert damage.rects() == [pygame.Rect(0, 0, 320, 320)]
    empty = Damage((320, 320), 32)
    empty.add(None)
    empty.add(pygame.Rect(400, 400, 5, 5))  # off the screen
    assert not empty and empty.rects() == []
    left, right = Damage((320, 320), 32), Damage((320, 320), 32)
    left.add(pygame.Rect(0, 0, 10, 10))
    right.add(pygame.Rect(300, 300, 10, 10))
    assert sorted(map(tuple, left.union(right).rects())) == [(0, 0, 32, 32), (288, 288, 32, 32)]
    everything = Damage((320, 320), 32)
    everything.add_everything()
    assert left.union(everything).rects() == [pygame.Rect(0, 0, 320, 320)]


def busy_scenes(seed: int, callers: int = 10) -> Iterator[Scene]:
    """`callers` callers (8 play, the rest wait) pressing keys, one scene per 1/60 s;
    at frame 90 the fourth hangs up."""
    engine = Engine(
        EngineConfig(facade=Facade(FLOORS, BAYS), attract_after_s=1e9, idle_s=1e9, turn_s=1e9),
        start=0.0,
    )
    rng = random.Random(seed)
    for i in range(callers):
        engine.handle(Join(f"c-damage{i:02d}", "twilio", f"…{20 + i}"), 0.0)
    now, frame = 0.0, 0
    while True:
        now, frame = now + 1 / 60, frame + 1
        if frame == 90:  # a caller hangs up: the one waiting takes the track
            engine.handle(Leave("c-damage03"), now)
        for _ in range(rng.randrange(3)):
            caller = f"c-damage{rng.randrange(min(8, callers)):02d}"
            engine.handle(Digit(caller, rng.choice("0123456789")), now)
        engine.advance(now, 0.1)
        engine.take_updates()
        yield engine.scene(now)


def pixels(display: Display) -> np.ndarray:
    return pygame.surfarray.array3d(display.surface).copy()


class Shown:
    """What the window shows: SDL copies the surface to it whole on a flip, and only
    the rectangles given on an update (what the dummy driver leaves out)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.pixels: np.ndarray | None = None
        monkeypatch.setattr(pygame.display, "flip", self.flip)
        monkeypatch.setattr(pygame.display, "update", self.update)

    def flip(self) -> None:
        surface = pygame.display.get_surface()
        assert surface is not None
        self.pixels = pygame.surfarray.array3d(surface).copy()

    def update(self, rects: list[pygame.Rect]) -> None:
        surface = pygame.display.get_surface()
        assert surface is not None and self.pixels is not None
        now = pygame.surfarray.pixels3d(surface)
        for r in rects:
            self.pixels[r.left : r.right, r.top : r.bottom] = now[
                r.left : r.right, r.top : r.bottom
            ]
        del now  # unlocks the surface


@pytest.mark.parametrize("callers", [2, 10])
@pytest.mark.parametrize("layout", ["dashboard", "projection"])
def test_a_frame_drawn_over_the_last_ones_is_the_frame_drawn_whole(
    video: None, layout: str, callers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a run of busy frames with overlays coming and going, each frame the window
    shows has the same pixels as the same scene drawn on a fresh screen."""
    projection = Projection(CORNERS, building_windows()) if layout == "projection" else None
    display = Display(size=SIZE, fullscreen=False, banner=BANNER, projection=projection)
    shown = Shown(monkeypatch)
    hud = Hud(
        fps=60.0, frame_ms=2.0, relay="connected", latency_ms=2.0, callers=10, midi_port="none"
    )
    scenes = busy_scenes(3, callers)
    checked = []
    for frame in range(150):
        scene = next(scenes)
        display.draw(
            scene,
            hud=hud if 20 <= frame < 40 else None,
            message="sound muted (M)" if 50 <= frame < 60 else None,
            help_lines=("H", "help") if 70 <= frame < 75 else None,
        )
        if frame in (45, 65, 80, 95, 149):  # after an overlay went away, a hang-up, late
            assert shown.pixels is not None
            checked.append((scene, shown.pixels.copy()))
    for scene, seen in checked:
        display.redraw()  # drawn whole: the static layer blitted over everything
        display.draw(scene)
        whole = pixels(display)
        differs = np.argwhere((seen != whole).any(axis=2))
        assert differs.size == 0, f"{len(differs)} pixels differ, e.g. at {differs[:3].tolist()}"
    display.close()


def test_only_the_changed_tiles_are_restored_and_shown(
    video: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With one caller playing, frames show less than the whole screen; the first
    frame and one after a redraw show it whole."""
    shown: list[object] = []
    monkeypatch.setattr(pygame.display, "flip", lambda: shown.append("whole"))
    monkeypatch.setattr(pygame.display, "update", lambda rects: shown.append(list(rects)))
    display = Display(size=SIZE, fullscreen=False, banner=BANNER)
    scenes = busy_scenes(5, callers=1)
    for _ in range(60):
        display.draw(next(scenes))
    assert shown[0] == "whole"
    parts = [s for s in shown[1:] if isinstance(s, list)]
    assert len(parts) > 20  # the beat's pulse lights every window: those are whole
    for rects in parts:
        area = sum(r.width * r.height for r in rects)
        assert 0 < area <= SIZE[0] * SIZE[1] * (WHOLE_SHARE + 0.05)  # (tiles at the edges)
    display.redraw()
    display.draw(next(scenes))
    assert shown[-1] == "whole"
    display.close()
