"""The billboard's screen, drawn for real: SDL's dummy video driver (software
rendering, no screen) for pixels, and a real X server (Xvfb) for the screenshot.

Pixels are read back from the surface the display drew on; where a check needs a
decoder (the QR code) it uses zbarimg on a saved screenshot, and the Xvfb test also
captures the X server's own root window with ImageMagick's ``import``.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pygame
import pytest
import segno

from billboard.controls import HELP_LINES, QUIT_PROMPT
from billboard.display import (
    WINDOW_OFF,
    Banner,
    Display,
    Hud,
    caller_label,
    compute_layout,
    legend_lines,
    place_qr,
    rgb,
    window_rects,
)
from billboard.display.alive import MARK_LEVEL, pattern_of
from billboard.display.facade import _blittable
from billboard.display.palette import mix
from billboard.display.text import TextCache
from billboard.engine import Command, Digit, Engine, EngineConfig, Join
from billboard.engine.scene import Facade, Lit, Scene, TrackView
from billboard.engine.tracks import DEFAULT_TRACKS
from tests.services import need_tool
from tests.support.pixels import colour_count, qr_text

# Screenshots land here for a human to look at (override with DIALJAM_ARTIFACTS).
ARTIFACTS = Path(
    os.environ.get("DIALJAM_ARTIFACTS", Path(__file__).resolve().parents[1] / "artifacts")
)
URL = "https://dialjam.example.org/k/dialjam"
BANNER = Banner("+1 555 010 0199", URL)
BASS = DEFAULT_TRACKS[1].color  # "#8a5cf6"
LEAD = DEFAULT_TRACKS[3].color  # "#ef4444"


@pytest.fixture
def display(video: None) -> Iterator[Display]:
    shown = Display(size=(1920, 1080), fullscreen=False, banner=BANNER)
    yield shown
    shown.close()


@pytest.fixture
def drawn_text(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """Every string the display draws from now on: all its text goes through
    `TextCache.render`, cached or not."""
    drawn: set[str] = set()
    render = TextCache.render

    def spy(cache: TextCache, text: str, px: int, color: tuple[int, int, int]) -> pygame.Surface:
        drawn.add(text)
        return render(cache, text, px, color)

    monkeypatch.setattr(TextCache, "render", spy)
    return drawn


def track(
    index: int,
    *,
    caller: str | None = "c-0001",
    display: str | None = "…12",
    pattern: tuple[int, ...] = (0, 4, 8, 12),
    muted: bool = False,
    fading: bool = False,
) -> TrackView:
    spec = DEFAULT_TRACKS[index]
    return TrackView(spec.name, spec.color, caller, display, muted, fading, pattern, 0.5)


def scene(
    *,
    tracks: Sequence[TrackView] = (),
    lit: Sequence[Lit] = (),
    facade: Facade | None = None,
    step: int = 3,  # the second half of a beat: the building's pulse has settled
    line: Sequence[str] = (),
    attract: bool = False,
    paused: bool = False,
) -> Scene:
    return Scene(
        time=0.0,
        step=step,
        loop_steps=32,
        bpm=112.0,
        key="C",
        scale="major",
        facade=facade or Facade(),
        tracks=tuple(tracks),
        line=tuple(line),
        line_length=len(line),
        lit=tuple(lit),
        attract=attract,
        paused=paused,
    )


def busy_scene(callers: int = 11, seconds: float = 4.0) -> Scene:
    """A real engine scene: `callers` join (8 play, the rest wait) and press digits at
    100 a second over all 8 tracks."""
    engine = Engine(EngineConfig(attract_after_s=1e9), start=0.0)
    for i in range(callers):
        engine.handle(Join(f"c-test{i:02d}", "twilio", f"…{10 + i}"), 0.0)
    now = 0.0
    for n in range(int(seconds * 100)):
        now = n / 100
        engine.handle(Digit(f"c-test{n % 8:02d}", "0123456789"[n * 7 % 10]), now)
        engine.advance(now, 0.1)
    engine.handle(Command("mute", {"caller": "c-test02", "on": True}), now)
    return engine.scene(now)


def pixel(shown: Display, at: tuple[int, int]) -> tuple[int, int, int]:
    r, g, b, _ = shown.surface.get_at(at)
    return r, g, b


def windows_of(shown: Display, facade: Facade | None = None) -> list[pygame.Rect]:
    """The facade's windows in screen pixels where `shown` draws them now."""
    return window_rects(shown.layout.facade, facade or Facade(), None)


def window(shown: Display, floor: int, bay: int, bays: int = 8) -> pygame.Rect:
    return windows_of(shown)[floor * bays + bay]


def region(shown: Display, rect: pygame.Rect) -> np.ndarray:
    return pygame.surfarray.array3d(shown.surface.subsurface(rect)).copy()


# -- the facade ------------------------------------------------------------------------


def test_an_empty_facade_is_dark_windows_on_black(display: Display) -> None:
    display.draw(scene())
    assert len(windows_of(display)) == 7 * 8
    for rect in windows_of(display):
        assert pixel(display, rect.center) == WINDOW_OFF
    assert pixel(display, (display.size[0] // 2, display.size[1] - 2)) == (0, 0, 0)
    # Not blank: the banner, the QR code and the building are there.
    assert colour_count(pygame.surfarray.array3d(display.surface)) > 20


def test_a_lit_window_glows_in_its_tracks_colour_where_the_engine_put_it(
    display: Display,
) -> None:
    lights = [Lit(2, 3, BASS, 1.0), Lit(5, 6, LEAD, 1.0)]
    display.draw(scene(tracks=[track(1), track(3)], lit=lights))
    assert pixel(display, window(display, 2, 3).center) == rgb(BASS)
    assert pixel(display, window(display, 5, 6).center) == rgb(LEAD)
    # A window far from both stays dark, and the halo lights the wall next to a lit one.
    assert pixel(display, window(display, 0, 7).center) == WINDOW_OFF
    beside = window(display, 2, 3).midright
    wall = pixel(display, (beside[0] + 3, beside[1]))
    assert wall[2] > 40 and wall[2] > wall[1]  # bass is violet: blue over green


def test_a_fading_light_sits_between_the_dark_window_and_the_colour(display: Display) -> None:
    display.draw(scene(lit=[Lit(3, 3, BASS, 0.5)]))
    r, g, b = pixel(display, window(display, 3, 3).center)
    full = rgb(BASS)
    for value, off, on in zip((r, g, b), WINDOW_OFF, full, strict=True):
        assert abs(value - (off + on) / 2) <= 8


def test_lights_follow_the_window_rectangles_given_for_a_real_building(video: None) -> None:
    # Two floors, two bays, windows of different sizes, listed floor by floor.
    windows = [(0.05, 0.05, 0.4, 0.3), (0.55, 0.05, 0.4, 0.3), (0.05, 0.55, 0.3, 0.35)]
    windows.append((0.6, 0.6, 0.35, 0.3))
    shown = Display(size=(1280, 720), fullscreen=False, banner=BANNER, windows=windows)
    try:
        building = Facade(floors=2, bays=2)
        shown.draw(scene(facade=building, lit=[Lit(1, 1, LEAD, 1.0)]))
        area = shown.layout.facade
        x, y, w, h = windows[3]
        centre = (
            round(area.x + (x + w / 2) * area.width),
            round(area.y + (y + h / 2) * area.height),
        )
        assert pixel(shown, centre) == rgb(LEAD)
        x, y, w, h = windows[2]
        other = (
            round(area.x + (x + w / 2) * area.width),
            round(area.y + (y + h / 2) * area.height),
        )
        assert pixel(shown, other) == WINDOW_OFF
    finally:
        shown.close()


def test_surfaces_blitted_per_window_never_have_rows_a_multiple_of_16_bytes(
    display: Display,
) -> None:
    """SDL copies such rows with cache-skipping stores: a small blit ten times slower."""
    for width in range(1, 70):
        made = _blittable((width, 5))
        assert made.get_pitch() % 16 != 0 and made.get_width() >= width


def test_a_lit_rectangular_window_shows_its_tracks_pattern_inside_it(display: Display) -> None:
    display.draw(scene(tracks=[track(1), track(3)], lit=[Lit(2, 3, LEAD, 1.0)]))
    marks = pattern_of(1)  # LEAD is the scene's second track
    assert marks
    inside = {
        tuple(int(v) for v in c) for c in region(display, window(display, 2, 3)).reshape(-1, 3)
    }
    assert inside == {rgb(LEAD), mix(WINDOW_OFF, rgb(LEAD), MARK_LEVEL)}


def test_window_rectangles_must_be_fractions_of_the_facade(video: None) -> None:
    with pytest.raises(ValueError, match="0…1"):
        Display(size=(800, 450), fullscreen=False, banner=BANNER, windows=[(0, 0, 1.5, 0.2)])


def test_the_beat_strip_moves_with_the_step_and_the_facade_only_on_the_beat(
    display: Display,
) -> None:
    tracks = [track(i, pattern=()) for i in range(8)]  # no region: no playhead on the wall
    display.draw(scene(tracks=tracks, step=2))
    beat_2, facade_2 = region(display, display.layout.beat), region(display, display.layout.facade)
    display.draw(scene(tracks=tracks, step=7))  # both past the middle of their beat
    assert not np.array_equal(region(display, display.layout.beat), beat_2)
    assert np.array_equal(region(display, display.layout.facade), facade_2)


# -- the legend and the banner ---------------------------------------------------------


def test_the_legend_shows_at_most_the_last_two_digits_of_a_number(
    display: Display, drawn_text: set[str]
) -> None:
    # "…12" as the engine sends it, and a full number as a buggy adapter might.
    views = [track(0, display="…12"), track(1, caller="c-0002", display="+1 (415) 555-1212")]
    views += [track(2, caller=None, display=None), track(3, display="Anna")]
    assert caller_label("+1 (415) 555-1212") == "…12"
    assert [line.who for line in legend_lines(scene(tracks=views))] == [
        "…12",
        "…12",
        "free",
        "Anna",
    ]
    display.draw(scene(tracks=views))
    drawn = drawn_text
    assert "…12" in drawn and "Anna" in drawn
    for text in drawn:
        digits = "".join(ch for ch in text if ch.isdigit())
        assert "5551212" not in digits and "4155" not in digits, text


def test_muted_and_leaving_tracks_are_labelled_and_free_ones_invite(
    display: Display, drawn_text: set[str]
) -> None:
    views = [track(0, muted=True), track(1, caller=None, display=None, fading=True)]
    views += [track(i, caller=None, display=None) for i in range(2, 8)]
    lines = legend_lines(scene(tracks=views))
    assert [(line.state, line.active) for line in lines[:3]] == [
        ("muted", True),
        ("leaving", True),
        ("", False),
    ]
    display.draw(scene(tracks=views, line=["c-w1", "c-w2"]))
    assert {"…12 (muted)", "(leaving)", "2 waiting"} <= drawn_text


def test_the_qr_code_on_screen_matches_segno_module_for_module(display: Display) -> None:
    display.draw(scene())
    matrix = list(segno.make(URL, error="m", micro=False).matrix_iter(scale=1, border=4))
    rect, module = place_qr(display.layout.qr, len(matrix))
    assert module >= 4  # big enough to scan from across the street
    assert rect.width == module * len(matrix)
    for row, cells in enumerate(matrix):
        for col, dark in enumerate(cells):
            centre = (rect.x + col * module + module // 2, rect.y + row * module + module // 2)
            assert pixel(display, centre) == ((0, 0, 0) if dark else (255, 255, 255)), (row, col)


def test_the_qr_code_on_screen_decodes_to_the_keypad_url(display: Display, tmp_path: Path) -> None:
    display.draw(busy_scene())
    shot = tmp_path / "frame.png"
    display.screenshot(shot)
    assert qr_text(shot) == URL


def test_without_a_keypad_url_the_banner_asks_for_a_call_and_draws_no_code(
    video: None, drawn_text: set[str]
) -> None:
    shown = Display(size=(800, 450), fullscreen=False, banner=Banner("+1 555 010 0199", None))
    try:
        shown.draw(scene(tracks=[track(0)]))
        assert shown.layout.qr.width == 0
        # No module of a code anywhere: its quiet zone is the only pure white drawn.
        assert not (pygame.surfarray.array3d(shown.surface) == 255).all(axis=2).any()
        assert "Call +1 555 010 0199 to play" in drawn_text
    finally:
        shown.close()


# -- overlays --------------------------------------------------------------------------


def test_the_test_pattern_marks_the_corners_and_numbers_every_window(
    display: Display, drawn_text: set[str]
) -> None:
    display.draw(busy_scene(), test_pattern=True)
    w, h = display.size
    assert pixel(display, (2, 2)) == (255, 0, 0)  # top left red …
    assert pixel(display, (w - 3, 2)) == (0, 255, 0)  # … top right green
    assert pixel(display, (2, h - 3)) == (0, 128, 255)
    assert pixel(display, (w - 3, h - 3)) == (255, 255, 0)
    assert {str(i) for i in range(56)} <= drawn_text
    assert pixel(display, windows_of(display)[0].topleft) == (0, 255, 255)  # outlined


def test_the_hud_the_help_and_a_message_are_drawn_over_the_facade(
    display: Display, drawn_text: set[str]
) -> None:
    busy = busy_scene()
    display.draw(busy)
    plain = region(display, display.layout.facade)
    hud = Hud(59.9, 2.4, "connected", 2.1, 11, "FluidSynth", {"dropped": "0"})
    display.draw(busy, hud=hud, help_lines=HELP_LINES, message=QUIT_PROMPT)
    assert not np.array_equal(region(display, display.layout.facade), plain)
    assert set(hud.lines()) | {QUIT_PROMPT, "Keys"} <= drawn_text
    assert "latency  –  (event to note)" in Hud(60, 2, "down", None, 0, None).lines()


def test_the_attract_state_invites_and_a_pause_is_announced(
    display: Display, drawn_text: set[str]
) -> None:
    display.draw(scene(attract=True, paused=True))
    assert {"Call +1 555 010 0199", "to play · or scan the code"} <= drawn_text
    assert "PAUSED · new callers wait" in drawn_text


# -- the window ------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(1920, 1080), (800, 450), (1280, 1024), (3840, 1080)])
def test_every_part_of_the_layout_fits_inside_the_window(size: tuple[int, int]) -> None:
    lay = compute_layout(size)
    screen = pygame.Rect((0, 0), size)
    parts = [lay.banner, lay.facade, lay.beat, lay.panel, lay.qr, lay.legend, lay.line]
    for part in parts:
        assert screen.contains(part) and part.width > 0 and part.height > 0, part
    for a, b in [(lay.banner, lay.facade), (lay.facade, lay.panel), (lay.facade, lay.beat)]:
        assert not a.colliderect(b)
    assert lay.panel.contains(lay.qr) and lay.panel.contains(lay.legend)


def test_a_small_window_draws_a_busy_scene_too(video: None) -> None:
    shown = Display(size=(800, 450), fullscreen=False, banner=BANNER)
    try:
        busy = busy_scene()
        shown.draw(busy, hud=Hud(60, 2, "connected", 1.0, 11, None), help_lines=HELP_LINES)
        shown.draw(busy)
        lit = max(busy.lit, key=lambda light: light.intensity)
        assert shown.size == (800, 450)
        assert pixel(shown, window(shown, lit.floor, lit.bay).center) != WINDOW_OFF
    finally:
        shown.close()


def test_a_resized_window_is_laid_out_again(display: Display) -> None:
    display.draw(scene())
    pygame.display.set_mode((1024, 576), pygame.RESIZABLE)  # what SDL does on a resize
    display.draw(scene(lit=[Lit(0, 0, BASS, 1.0)]))
    assert display.size == (1024, 576)
    assert display.layout.size == (1024, 576)
    assert pixel(display, window(display, 0, 0).center) == rgb(BASS)


def test_full_screen_toggles_and_the_frame_still_draws(display: Display) -> None:
    display.toggle_fullscreen()
    assert pygame.display.is_fullscreen()
    display.draw(scene(lit=[Lit(1, 1, LEAD, 1.0)]))
    assert pixel(display, window(display, 1, 1).center) == rgb(LEAD)
    display.toggle_fullscreen()
    assert not pygame.display.is_fullscreen()


def test_no_reachable_screen_is_an_oserror_that_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pygame.display.quit()
    monkeypatch.setenv("SDL_VIDEODRIVER", "x11")
    monkeypatch.setenv("DISPLAY", ":4099")  # no X server there
    try:
        with pytest.raises(OSError, match=r"cannot open a display.*Xvfb"):
            Display(size=(800, 450), fullscreen=False, banner=BANNER)
    finally:
        pygame.quit()


def test_a_display_that_is_not_connected_is_an_oserror(video: None) -> None:
    with pytest.raises(OSError, match="display 3 not found"):
        Display(size=(800, 450), fullscreen=False, display=3, banner=BANNER)


# -- a real X server -------------------------------------------------------------------


def test_a_screenshot_of_eight_callers_under_xvfb_is_saved_and_not_blank(
    xvfb: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    grab = need_tool("import", "apt-get install imagemagick (make test installs it)")
    pygame.display.quit()
    monkeypatch.setenv("DISPLAY", xvfb)
    monkeypatch.setenv("SDL_VIDEODRIVER", "x11")
    # Software framebuffer: SDL's GL path on Xvfb is Mesa's software renderer, ~50 fps.
    monkeypatch.setenv("SDL_FRAMEBUFFER_ACCELERATION", "0")
    monkeypatch.setenv("DIALJAM_PRESENT", "thread")  # frames shown from a thread of their own
    busy = busy_scene()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / "billboard_8_callers_1920x1080.png"
    root = ARTIFACTS / "billboard_8_callers_x_root.png"
    try:
        shown = Display(fullscreen=True, banner=BANNER)  # the whole 1920×1080 screen
        assert pygame.display.get_driver() == "x11"
        assert shown.size == (1920, 1080)
        for _ in range(5):  # a few frames, as the loop would, so X has mapped the window
            pygame.event.pump()
            shown.draw(busy)
        # Asked for, on a full-screen window under X: frames shown from a thread.
        assert shown.presenter is not None
        shown.screenshot(path)
        # What the X server itself shows (not only what pygame kept): its root window.
        subprocess.run(
            [grab, "-display", xvfb, "-window", "root", str(root)], check=True, timeout=30
        )
        windows = window_rects(shown.layout.facade, busy.facade, None)
        shown.close()
    finally:
        pygame.quit()  # off the X server before the fixture stops it
    print(f"screenshot: {path}")

    for saved in (path, root):
        image = pygame.surfarray.array3d(pygame.image.load(str(saved)))
        assert image.shape == (1920, 1080, 3)
        assert (image.sum(axis=2) > 0).mean() > 0.2, saved  # a lit picture, not black
        assert colour_count(image) > 200, saved
        assert_lights_in(image, busy, windows)


def assert_lights_in(image: np.ndarray, shown: Scene, windows: Sequence[pygame.Rect]) -> None:
    """Every well-lit window shows its own track's colour (at the light's intensity)
    rather than any other track's."""
    off = np.array(WINDOW_OFF)
    palette = {t.color: np.array(rgb(t.color)) for t in shown.tracks}
    checked = 0
    for light in shown.lit:
        if light.intensity < 0.5:
            continue
        x, y = windows[light.floor * shown.facade.bays + light.bay].center
        seen = image[x, y].astype(int)
        expected = {c: off + (v - off) * light.intensity for c, v in palette.items()}
        nearest = min(expected, key=lambda c: float(np.abs(expected[c] - seen).sum()))
        assert nearest == light.color, (light, seen)
        assert float(np.abs(expected[light.color] - seen).max()) <= 12, (light, seen)
        checked += 1
    assert checked >= 3
