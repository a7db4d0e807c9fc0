"""A facade that comes alive and players who see themselves, in both layouts: the
beat's pulse, a note's ripple, a section's wash, the idle show with a QR code that
scans when the picture is degraded to 3 pixels a module, join moments and labels,
each track's window pattern, and the call to play said once.

Scenes are built at given times (the display reads no clock): a moment is drawn by
giving the scene its step, phase and time. Pixels are read back from SDL's dummy
video driver; the QR code is decoded by zbarimg.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pygame
import pytest
import segno

from billboard.display import WINDOW_OFF, Banner, Display, player_label, rgb, window_rects
from billboard.display.alive import (
    PATTERN_NAMES,
    RIPPLE_REACH,
    beat_pulse,
    chase_window,
    join_strength,
    pattern_of,
    ripple,
    section_wash,
)
from billboard.display.mapped import bounds
from billboard.display.text import TextCache
from billboard.engine import Digit, Engine, EngineConfig, Join
from billboard.engine.scene import Facade, Lit, Scene, TrackView
from billboard.engine.tracks import DEFAULT_TRACKS
from billboard.projection import Projection
from tests.billboard.buildings import BAYS, CORNERS, FLOORS, building_windows
from tests.support.pixels import colour_count, qr_text

ARTIFACTS = Path(
    os.environ.get("DIALJAM_ARTIFACTS", Path(__file__).resolve().parents[1] / "artifacts")
)
URL = "https://dialjam.example.org/k/dialjam"
PHONE = "+1 555 010 0199"
LAYOUTS = ("dashboard", "projection")


def view(
    index: int,
    *,
    caller: str | None = "c-pfbnkdsvqt",
    display: str | None = "…12",
    region: tuple[int, int] | None = None,
    since: float | None = None,
    pattern: tuple[int, ...] = (0, 4, 8, 12),
) -> TrackView:
    spec = DEFAULT_TRACKS[index]
    return TrackView(
        spec.name, spec.color, caller, display, False, False, pattern, 0.5, region, since
    )


def moment(
    *,
    step: int = 3,
    phase: float = 0.0,
    time: float = 20.0,
    tracks: Sequence[TrackView] = (),
    lit: Sequence[Lit] = (),
    section: str = "build",
    section_step: int = 0,
    attract: bool = False,
) -> Scene:
    """A scene of the 6 × 14 building at one moment (step 3: the pulse has settled)."""
    return Scene(
        time=time,
        step=step,
        loop_steps=32,
        bpm=112.0,
        key="C",
        scale="major",
        facade=Facade(FLOORS, BAYS),
        tracks=tuple(tracks),
        line=(),
        line_length=0,
        lit=tuple(lit),
        attract=attract,
        paused=False,
        section=section,
        section_step=section_step,
        phase=phase,
    )


def open_display(layout: str, banner: Banner, size: tuple[int, int] = (1920, 1080)) -> Display:
    projection = Projection(CORNERS, building_windows()) if layout == "projection" else None
    return Display(size=size, fullscreen=False, banner=banner, projection=projection)


@pytest.fixture(params=LAYOUTS)
def shown(request: pytest.FixtureRequest, video: None) -> Iterator[Display]:
    display = open_display(request.param, Banner(PHONE, URL))
    yield display
    display.close()


@pytest.fixture
def rendered(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every string the display renders from now on, in order, once per rendering."""
    seen: list[str] = []
    render = TextCache.render

    def spy(cache: TextCache, text: str, px: int, color: tuple[int, int, int]) -> pygame.Surface:
        seen.append(text)
        return render(cache, text, px, color)

    monkeypatch.setattr(TextCache, "render", spy)
    return seen


def boxes(display: Display) -> list[pygame.Rect]:
    """Each window's rectangle in pixels, index floor * bays + bay."""
    mapped = display.mapped
    if mapped is None:
        return window_rects(display.layout.facade, Facade(FLOORS, BAYS), None)
    return [bounds(quad) for quad in mapped.windows]


def image(display: Display) -> np.ndarray:
    return pygame.surfarray.array3d(display.surface).astype(int)


def centre_brightness(display: Display, windows: Sequence[int] | None = None) -> float:
    """The mean brightness of windows' centres (all of them by default)."""
    pixels = image(display)
    rects = boxes(display)
    chosen = range(len(rects)) if windows is None else windows
    return float(np.mean([pixels[rects[i].center].sum() / 3 for i in chosen]))


# -- the beat, the sections ------------------------------------------------------------


def test_the_pulse_is_strongest_on_the_downbeat_and_settles_within_half_a_beat() -> None:
    downbeat, beat_two, settled = moment(step=0), moment(step=4), moment(step=2)
    assert beat_pulse(downbeat) == 1.0
    assert 0 < beat_pulse(beat_two) < beat_pulse(downbeat)
    assert beat_pulse(settled) == 0.0
    assert beat_pulse(moment(step=0, phase=0.5)) < beat_pulse(downbeat)  # it swells smoothly
    assert beat_pulse(moment(step=0, section="break")) < 0.5  # a calmer building


def test_the_building_is_brighter_on_the_downbeat_than_mid_beat(shown: Display) -> None:
    shown.draw(moment(step=2))
    mid_beat = centre_brightness(shown)
    shown.draw(moment(step=16))  # the next bar's downbeat
    downbeat = centre_brightness(shown)
    shown.draw(moment(step=20))  # its second beat
    second = centre_brightness(shown)
    assert downbeat > second > mid_beat
    assert downbeat - mid_beat > 15  # seen from the street, yet a swell, not a flash
    assert mid_beat == pytest.approx(sum(WINDOW_OFF) / 3, abs=1)


def test_a_drop_washes_the_whole_facade_for_a_moment(shown: Display) -> None:
    # The drop began at step 64; two steps in (past the pulse), then two bars on.
    shown.draw(moment(section="drop", section_step=64, step=66))
    washed = image(shown)
    shown.draw(moment(section="drop", section_step=64, step=98))
    after = image(shown)
    rects = boxes(shown)
    for bay in range(BAYS):
        column = [rects[f * BAYS + bay].center for f in range(FLOORS)]
        lit = np.mean([washed[p].sum() / 3 for p in column])
        calm = np.mean([after[p].sum() / 3 for p in column])
        assert lit > calm + 60, bay
    assert section_wash(moment(section="drop", section_step=64, step=66)) > section_wash(
        moment(section="build", section_step=64, step=66)
    )
    assert section_wash(moment(section="drop", step=66)) == 0.0  # the first section: no change


def test_a_break_is_a_darker_building(shown: Display) -> None:
    shown.draw(moment(section="break", step=34))
    dark = centre_brightness(shown)
    shown.draw(moment(section="build", step=34))
    assert dark < centre_brightness(shown) - 8


# -- notes and loops -------------------------------------------------------------------


def test_a_ripple_spreads_from_a_window_that_just_played_and_is_gone_after_its_time(
    shown: Display,
) -> None:
    bass = view(1)
    rects = boxes(shown)
    box = rects[2 * BAYS + 6]
    spread = 0.6
    intensity = 0.5**spread  # a player's note, spread × its half-life ago
    assert ripple(intensity) == pytest.approx(spread)
    assert ripple(0.5) is None and ripple(0.3) is None  # a bed note, or faded: no ripple
    scale = 1 + (RIPPLE_REACH - 1) * spread
    top = (box.centerx, box.centery - round(box.height * scale / 2))
    shown.draw(moment(tracks=[bass], lit=[Lit(2, 6, bass.color, intensity)]))
    rippling = image(shown)
    shown.draw(moment(tracks=[bass], lit=[Lit(2, 6, bass.color, 0.45)]))
    gone = image(shown)

    def ring(pixels: np.ndarray) -> int:
        x, y = top
        return int(pixels[x - 2 : x + 3, y - 8 : y + 5, 2].max())  # bass is blue

    assert ring(rippling) > ring(gone) + 40
    # A ring, not a glow: between the window and the ring, darker than on it.
    inside = (box.centerx, (box.top + top[1]) // 2)
    assert rippling[inside][2] < ring(rippling)


def test_the_playhead_climbs_each_region_once_a_loop() -> None:
    bass = view(1, region=(4, 2))
    seen = [chase_window(bass, moment(step=s)) or (-1, -1) for s in range(32)]
    assert seen[0] == (FLOORS - 1, 4)  # the bottom floor first
    assert seen[-1] == (0, 5)  # the top floor last
    assert {bay for _, bay in seen} == {4, 5}
    assert len(set(seen)) == 2 * FLOORS  # every window of the region, in order
    assert chase_window(view(1, region=None), moment()) is None


def test_the_playhead_is_seen_on_the_wall(shown: Display) -> None:
    bass = view(1, region=(4, 2), pattern=())
    rects = boxes(shown)
    shown.draw(moment(step=2, tracks=[bass]))
    floor, bay = chase_window(bass, moment(step=2)) or (0, 0)
    at = rects[floor * BAYS + bay].center
    r, g, b = image(shown)[at]
    assert b > g > r and (r, g, b) != WINDOW_OFF  # tinted blue, the bass's colour


# -- players who see themselves --------------------------------------------------------


def test_an_anonymous_keypad_player_gets_a_friendly_label_never_a_number() -> None:
    assert player_label(view(1, display=None)) == "player QT"
    assert player_label(view(1, display="Ana")) == "Ana"
    assert player_label(view(1, display="…12")) == "…12"
    assert player_label(view(1, display="+1 (415) 555-1212")) == "…12"
    assert player_label(view(1, caller=None, display=None)) == ""


def test_a_join_is_a_moment_for_a_few_seconds() -> None:
    joined = view(1, since=10.0)
    assert join_strength(joined, 9.0) == 0.0
    assert join_strength(joined, 11.0) == 1.0
    assert 0 < join_strength(joined, 13.3) < 1.0
    assert join_strength(joined, 14.0) == 0.0
    assert join_strength(view(1, caller=None, since=10.0), 11.0) == 0.0


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_join_shows_at_the_players_region_then_only_their_label_stays(
    video: None, layout: str, rendered: list[str]
) -> None:
    banner = Banner(None, URL)  # no number of the installation's own on screen
    tracks = [view(0, caller="c-bcdfghjkmn", display="Ana", region=(0, 4), since=0.0)]
    tracks.append(view(1, display="+1 (415) 555-1212", region=(4, 6), since=10.0))
    tracks += [view(i, caller=None, display=None) for i in range(2, 8)]
    display = open_display(layout, banner)
    try:
        display.draw(moment(time=11.0, tracks=tracks))
        pixels = image(display)
        rects = boxes(display)
        assert "…12 joins on bass" in rendered
        assert not any("Ana joins" in text for text in rendered)  # hers was 11 s ago
        # The words stand across the bass's region (bays 4–9), in the bass's colour.
        left, right = rects[4].left, rects[9].right
        bass = np.array(rgb(DEFAULT_TRACKS[1].color))
        near = np.abs(pixels - bass).sum(axis=2) < 60
        xs, _ = np.nonzero(near)
        assert len(xs) > 500 and left <= np.median(xs) <= right
        rendered.clear()
    finally:
        display.close()
    display = open_display(layout, banner)
    try:
        display.draw(moment(time=15.0, tracks=tracks))
        assert not any("joins" in text for text in rendered)
        assert {"…12", "Ana"} <= set(rendered)
    finally:
        display.close()
    for text in rendered:
        digits = "".join(ch for ch in text if ch.isdigit())
        assert "1212" not in digits and "415" not in digits, text


# -- the palette and the patterns ------------------------------------------------------


def test_each_track_lights_its_windows_with_a_pattern_of_its_own(video: None) -> None:
    assert len({pattern_of(i) for i in range(8)}) == 8 == len(PATTERN_NAMES)
    display = open_display("dashboard", Banner(PHONE, URL))
    try:
        tracks = [view(i) for i in range(8)]
        lights = [Lit(1, 2 * i % BAYS, t.color, 1.0) for i, t in enumerate(tracks[:7])]
        lights.append(Lit(3, 1, tracks[7].color, 1.0))
        display.draw(moment(tracks=tracks, lit=lights))
        pixels = image(display)
        rects = boxes(display)
        masks = []
        for light in lights:
            rect = rects[light.floor * BAYS + light.bay]
            pane = pixels[rect.left : rect.right, rect.top : rect.bottom]
            full = np.array(rgb(light.color))
            # Where the pane shows its full colour, and where a darker mark.
            mask = np.abs(pane - full).sum(axis=2) < 30
            masks.append(pygame.transform.scale(_surface(mask), (20, 20)))
        arrays = [pygame.surfarray.array2d(m) != 0 for m in masks]
        for i in range(8):
            assert arrays[i][10, 10], i  # the centre always shows the colour itself
            for j in range(i):
                assert (arrays[i] != arrays[j]).sum() > 20, (i, j)
    finally:
        display.close()


def _surface(mask: np.ndarray) -> pygame.Surface:
    grey = np.where(mask, 255, 0).astype(np.uint8)
    return pygame.surfarray.make_surface(np.repeat(grey[:, :, None], 3, axis=2))


# -- the invitation --------------------------------------------------------------------


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("attract", [False, True])
def test_no_call_without_a_number_and_scan_is_said_once(
    video: None, layout: str, attract: bool, rendered: list[str]
) -> None:
    tracks = [view(0, region=(0, 7)), *(view(i, caller=None, display=None) for i in range(1, 8))]
    display = open_display(layout, Banner(None, URL))
    try:
        display.draw(moment(tracks=[] if attract else tracks, attract=attract))
    finally:
        display.close()
    assert not any("call" in text.lower() for text in rendered), rendered
    assert sum("scan" in text.lower() for text in rendered) == 1, rendered
    rendered.clear()
    display = open_display(layout, Banner(PHONE, URL))
    try:
        display.draw(moment(tracks=[] if attract else tracks, attract=attract))
    finally:
        display.close()
    assert sum("scan" in text.lower() for text in rendered) == 1, rendered
    assert any(PHONE in text for text in rendered)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_idle_show_lights_every_bay_and_its_large_code_scans_at_3_px_a_module(
    video: None, layout: str, tmp_path: Path
) -> None:
    display = open_display(layout, Banner(PHONE, URL))
    try:
        display.draw(moment(attract=True, time=42.0, section="intro"))
        pixels = image(display)
        rects = boxes(display)
        surface = display.surface.copy()
    finally:
        display.close()
    # Every bay shows a window in the waves' colours (not unlit, not black).
    for bay in range(BAYS):
        shades = [tuple(pixels[rects[f * BAYS + bay].center]) for f in range(FLOORS)]
        assert any(s != WINDOW_OFF and max(s) > 70 for s in shades), (bay, shades)
    # …and the colours differ across the building (waves, not one wash).
    centres = {tuple(pixels[r.center]) for r in rects}
    assert len(centres) > 20
    # The code: its quiet zone is the only pure white; scale it to 3 px a module.
    white = (pixels == 255).all(axis=2)
    xs, _ = np.nonzero(white)
    side = xs.max() - xs.min() + 1
    modules = segno.make(URL, error="m", micro=False).symbol_size(border=4)[0]
    module = side / modules
    assert module >= 12  # a large code: ≈ 1/90 of the picture's height a module at least
    factor = 3 / module
    small = pygame.transform.scale(
        surface, (round(surface.get_width() * factor), round(surface.get_height() * factor))
    )
    shot = tmp_path / f"idle_{layout}_3px.png"
    pygame.image.save(small, str(shot))
    assert qr_text(shot) == URL


# -- screenshots for a human ------------------------------------------------------------


def caller_id(i: int) -> str:
    """A keypad's pseudonym (letters only, as relay/contract/privacy.py makes them)."""
    letters = "bcdfghjkmnpqrstv"
    return f"c-{letters[i]}kpqrs{letters[(i * 7) % 16]}{letters[(i * 3 + 5) % 16]}"


def played(callers: int, seconds: float, *, joined_at: float = 0.5) -> Scene:
    """A real engine's scene of the 6 × 14 building: `callers` join at `joined_at` (8
    play, the rest wait) and press digits at about 60 a second."""
    engine = Engine(EngineConfig(facade=Facade(FLOORS, BAYS), attract_after_s=6.0), start=0.0)
    names = ["Ana", None, "Kofi", "…12", None, "Lea", "…47", None, "…03", "Max", None, "…88"]
    for i in range(callers):
        engine.handle(Join(caller_id(i), "keypad", names[i]), joined_at)
    now, n = 0.0, 0
    while now < seconds:
        now = round(now + 1 / 60, 6)
        n += 1
        if callers and now > joined_at and n % 2 == 0:
            who = n // 2 % min(8, callers)
            digit = "0123456789*#"[(n * 7 + who) % 12]
            engine.handle(Digit(caller_id(who), digit), now)
        engine.advance(now, 0.1)
    return engine.scene(now)


def test_screenshots_of_the_building_alive_go_to_the_artifacts(video: None) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shots = {
        "facade_idle": played(0, 9.0),
        "facade_1_caller": played(1, 12.0),
        "facade_4_callers": played(4, 12.0),
        "facade_8_callers": played(8, 12.0),
        "facade_12_callers": played(12, 12.0),
        "facade_join": played(4, 2.0, joined_at=0.8),
    }
    assert shots["facade_idle"].attract and not shots["facade_8_callers"].attract
    display = open_display("projection", Banner(PHONE, URL))
    try:
        for name, scene in shots.items():
            display.draw(scene)
            pixels = image(display)
            assert colour_count(pixels) > 100, name
            small = pygame.transform.smoothscale(display.surface, (960, 540))
            pygame.image.save(small, str(ARTIFACTS / f"{name}.png"))
    finally:
        display.close()
    lit_bays = {light.bay for light in shots["facade_8_callers"].lit}
    assert len(lit_bays) >= BAYS // 2
