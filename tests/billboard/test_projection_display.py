"""The projection layout drawn for real: a 6 × 14 building given as four corners and
84 window quads, on SDL's dummy video driver (pixels read back from the surface),
and the calibration mode driven by real X events (xdotool) under Xvfb, saved to the
installation's TOML file and read back.

Where a window should be is worked out here with a direct linear transform solved by
numpy (not with the code under test), from the corners and quads as the config says.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pygame
import pytest

from billboard.calibrate import Calibrator
from billboard.config import load_billboard_config
from billboard.controls import Keyboard, read_controls
from billboard.display import WINDOW_OFF, Banner, Display, rgb
from billboard.display.calibration_view import CORNER_COLORS, CalibrationOverlay
from billboard.display.glows import Glows, bucket
from billboard.engine.scene import Facade, Lit, Scene, TrackView
from billboard.engine.tracks import DEFAULT_TRACKS
from billboard.projection import Projection, Quad
from billboard.projection.calibration import Calibration, Corner, Window
from billboard.projection.table import save_projection
from relay.config import load_installation
from tests.billboard.buildings import BAYS, CORNERS, FLOORS, building_windows
from tests.services import need_tool
from tests.support.pixels import colour_count, colours, qr_text

ARTIFACTS = Path(
    os.environ.get("DIALJAM_ARTIFACTS", Path(__file__).resolve().parents[1] / "artifacts")
)
URL = "https://dialjam.example.org/k/dialjam"
BANNER = Banner("+1 555 010 0199", URL)
BASS, LEAD = DEFAULT_TRACKS[1].color, DEFAULT_TRACKS[3].color


def dlt(source: Sequence[tuple[float, float]], target: Sequence[tuple[float, float]]) -> np.ndarray:
    """The homography taking four `source` points to `target`, by a direct linear
    transform (an 8 × 8 system solved by numpy)."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(source, target, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs += [u, v]
    h = np.linalg.solve(np.array(rows, float), np.array(rhs, float))
    return np.append(h, 1.0).reshape(3, 3)


def where(size: tuple[int, int], quad: Quad, corners: Quad = CORNERS) -> tuple[int, int]:
    """The pixel at the centre of `quad` (facade coordinates) on an output of `size`."""
    w, h = size
    pin = dlt([(0, 0), (1, 0), (1, 1), (0, 1)], [(x * w, y * h) for x, y in corners])
    points = [pin @ np.array([u, v, 1.0]) for u, v in quad]
    xs = [p[0] / p[2] for p in points]
    ys = [p[1] / p[2] for p in points]
    return round(sum(xs) / 4), round(sum(ys) / 4)


def track(index: int, caller: str | None = "c-0001") -> TrackView:
    spec = DEFAULT_TRACKS[index]
    return TrackView(spec.name, spec.color, caller, "…12", False, False, (0, 4), 0.5)


def scene(lit: Sequence[Lit] = (), attract: bool = False) -> Scene:
    return Scene(
        time=0.0,
        step=3,
        loop_steps=32,
        bpm=112.0,
        key="C",
        scale="major",
        facade=Facade(FLOORS, BAYS),
        tracks=(track(1), track(3), *(track(i, None) for i in (0, 2, 4, 5, 6, 7))),
        line=(),
        line_length=0,
        lit=tuple(lit),
        attract=attract,
        paused=False,
    )


def checkerboard(odd: bool) -> list[Lit]:
    """Two windows in three lit, bass and lead alternating; `odd` swaps the colours
    and which windows stay dark, so two frames light every window."""
    return [
        Lit(f, b, BASS if (f + b) % 2 == odd else LEAD, 1.0)
        for f in range(FLOORS)
        for b in range(BAYS)
        if (f * BAYS + b + odd) % 3 != 0
    ]


@pytest.fixture
def building() -> Projection:
    return Projection(CORNERS, building_windows(), info="region")


@pytest.fixture
def shown(video: None, building: Projection) -> Iterator[Display]:
    display = Display(size=(1920, 1080), fullscreen=False, banner=BANNER, projection=building)
    yield display
    display.close()


def pixel(display: Display, at: tuple[int, int]) -> tuple[int, int, int]:
    r, g, b, _ = display.surface.get_at(at)
    return r, g, b


def test_every_window_of_a_6_by_14_building_lights_where_its_quad_says(
    shown: Display, building: Projection
) -> None:
    assert len(building.windows) == 84
    for odd in (False, True):
        lights = checkerboard(odd)
        shown.draw(scene(lights))
        colour = {(light.floor, light.bay): rgb(light.color) for light in lights}
        assert {light.color for light in lights} == {BASS, LEAD}
        for index, quad in enumerate(building.windows):
            floor, bay = divmod(index, BAYS)
            expected = colour.get((floor, bay), WINDOW_OFF)
            assert pixel(shown, where(shown.size, quad)) == expected, (floor, bay)


def test_eight_people_playing_30_s_light_every_bay_and_most_windows_where_their_quads_are(
    shown: Display,
) -> None:
    from billboard.engine import Digit, Engine, EngineConfig, Join
    from relay.rehearsal.plan import CrowdOptions, plan_crowd

    quads = building_windows()
    engine = Engine(EngineConfig(facade=Facade(FLOORS, BAYS)), start=0.0)
    options = CrowdOptions(callers=8, rate=1.4, duration=30, ramp=5, style="human", check=False)
    events: list[tuple[float, Join | Digit]] = []
    for plan in plan_crowd(options, 11):
        caller = f"c-{plan.index:04x}"
        events.append((plan.start, Join(caller)))
        events += [(plan.start + p.at, Digit(caller, p.key)) for p in plan.presses]
    events.sort(key=lambda item: item[0])
    seen: set[tuple[int, int]] = set()  # windows found lit on the wall, in their colour
    now, frames = 0.0, 0
    for at, event in [*events, (35.0, None)]:
        while now < at:  # four frames a second, each checked where the config says
            engine.advance(now, 0.1)
            frame = engine.scene(now)
            shown.draw(frame)
            frames += 1
            for light in frame.lit:
                if light.intensity < 0.6:
                    continue
                got = np.array(
                    pixel(shown, where(shown.size, quads[light.floor * BAYS + light.bay]))
                )
                want, off = np.array(rgb(light.color)), np.array(WINDOW_OFF)
                if np.abs(got - want).sum() < np.abs(got - off).sum():
                    seen.add((light.floor, light.bay))
            now += 0.25
        if event is not None:
            engine.handle(event, at)
    assert frames >= 120
    assert {bay for _, bay in seen} == set(range(BAYS))  # every bay, at least once
    assert len(seen) > FLOORS * BAYS / 2, len(seen)  # more than half of the 84 windows


def facade_coordinates(size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """For every pixel of an output of `size`: where on the facade (u, v in 0…1) it
    lands, by the corners' own transform (solved here, not the billboard's)."""
    w, h = size
    to_facade = dlt([(x * w, y * h) for x, y in CORNERS], [(0, 0), (1, 0), (1, 1), (0, 1)])
    xs, ys = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5, indexing="ij")
    d = to_facade[2, 0] * xs + to_facade[2, 1] * ys + to_facade[2, 2]
    u = (to_facade[0, 0] * xs + to_facade[0, 1] * ys + to_facade[0, 2]) / d
    v = (to_facade[1, 0] * xs + to_facade[1, 1] * ys + to_facade[1, 2]) / d
    return u, v


def test_the_idle_shows_invitation_lands_square_on_the_wall_and_its_code_scans(
    shown: Display, tmp_path: Path
) -> None:
    shown.draw(scene(attract=True))
    shot = tmp_path / "idle.png"
    shown.screenshot(shot)
    assert qr_text(shot) == URL
    # The code's white quiet zone, seen on the facade (undoing the corner-pin), is a
    # square with straight edges at the facade's middle height: the card was warped
    # with the building, not laid flat on the projector's pixels.
    u, v = facade_coordinates(shown.size)
    white = np.all(pygame.surfarray.array3d(shown.surface) == 255, axis=2)
    uw, vw = u[white], v[white]
    u0, u1, v0, v1 = uw.min(), uw.max(), vw.min(), vw.max()
    assert abs((v0 + v1) / 2 - 0.5) < 0.02 and u1 - u0 > 0.1
    for strip in (
        (u >= u0) & (u <= u0 + 0.01 * (u1 - u0)) & (v >= v0) & (v <= v1),  # left edge
        (u <= u1) & (u >= u1 - 0.01 * (u1 - u0)) & (v >= v0) & (v <= v1),  # right
        (v >= v0) & (v <= v0 + 0.01 * (v1 - v0)) & (u >= u0) & (u <= u1),  # top
        (v <= v1) & (v >= v1 - 0.01 * (v1 - v0)) & (u >= u0) & (u <= u1),  # bottom
    ):
        assert white[strip].mean() > 0.97, white[strip].mean()


def test_nothing_is_drawn_outside_the_mapped_facade(shown: Display) -> None:
    every = [Lit(f, b, LEAD, 1.0) for f in range(FLOORS) for b in range(BAYS)]
    shown.draw(scene(every))
    w, h = shown.size
    u, v = facade_coordinates(shown.size)
    margin = 2.5 / min(w, h)  # pixels on the outline itself may be either
    outside = (u < -margin) | (u > 1 + margin) | (v < -margin) | (v > 1 + margin)
    image = pygame.surfarray.array3d(shown.surface)
    assert outside.sum() > 0.1 * w * h
    assert image[outside].max() == 0
    # …and the halos do light the facade around the windows inside it.
    assert image[~outside].mean() > 20


def test_the_info_region_invites_with_a_qr_code_that_scans_from_the_wall(
    shown: Display, tmp_path: Path
) -> None:
    shown.draw(scene(checkerboard(False)))
    shot = tmp_path / "projection.png"
    shown.screenshot(shot)
    assert qr_text(shot) == URL


def test_with_info_off_only_the_windows_are_drawn(video: None, building: Projection) -> None:
    quiet = Projection(CORNERS, building.windows, info="off")
    display = Display(size=(1280, 720), fullscreen=False, banner=BANNER, projection=quiet)
    try:
        display.draw(scene())
        image = pygame.surfarray.array3d(display.surface)
        seen = colours(image)
        assert (255, 255, 255) not in seen  # no QR code, no banner
        assert seen <= {(0, 0, 0), WINDOW_OFF, (58, 64, 86)}  # black, windows, frames
    finally:
        display.close()


def test_the_calibration_mode_draws_handles_and_the_photo_underlay_over_the_output(
    shown: Display, building: Projection, tmp_path: Path
) -> None:
    photo = tmp_path / "building.png"
    green = pygame.Surface((64, 36))
    green.fill((0, 200, 0))
    pygame.image.save(green, str(photo))
    state = Calibration(building, shown.size, selected=Corner(0))
    shown.draw(scene(), calibration=CalibrationOverlay(state, ("CALIBRATION",), photo))
    x, y = (round(v) for v in state.mapped.outline[0])
    assert pixel(shown, (x + 4, y - 5)) == CORNER_COLORS[0]  # the selected corner, filled
    r, g, b = pixel(shown, (4, shown.size[1] - 4))  # off the facade: black under the photo
    assert r == b == 0 and 90 <= g <= 110  # the photo at half strength
    # A selected window is outlined in white.
    selected = Calibration(building, shown.size, selected=Window(20))
    shown.draw(scene(), calibration=CalibrationOverlay(selected, ("CALIBRATION",)))
    top_left = selected.mapped.windows[20][0]
    top_right = selected.mapped.windows[20][1]
    mid = (round((top_left[0] + top_right[0]) / 2), round((top_left[1] + top_right[1]) / 2))
    assert pixel(shown, mid) == (255, 255, 255)


# -- a real X server: the calibration mode driven by the mouse and the keys ------------

OPERATORS_FILE = f"""\
# The Rialto — the operator's own notes stay
[billboard]
phone = "+1 555 010 0199"  # on the banner

[billboard.facade]
floors = {FLOORS}
bays = {BAYS}
"""


def test_calibrating_with_mouse_and_keys_under_xvfb_saves_a_toml_that_reloads(
    xvfb: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    xdotool = need_tool("xdotool", "apt-get install xdotool (make test installs it)")
    grab = need_tool("import", "apt-get install imagemagick (make test installs it)")
    config = tmp_path / "rialto.toml"
    config.write_text(OPERATORS_FILE)
    save_projection(config, Projection(CORNERS, building_windows()), floors=FLOORS, bays=BAYS)
    board = load_billboard_config(load_installation(config, env={}))
    assert board.projection is not None and board.layout == "projection"
    pygame.display.quit()
    monkeypatch.setenv("DISPLAY", xvfb)
    monkeypatch.setenv("SDL_VIDEODRIVER", "x11")
    monkeypatch.setenv("SDL_FRAMEBUFFER_ACCELERATION", "0")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    lights = checkerboard(True)

    def xdo(*args: str) -> None:
        subprocess.run([xdotool, *args], check=True, timeout=30, env={**os.environ})

    try:
        display = Display(fullscreen=True, banner=BANNER, projection=board.projection)
        calibrator = Calibrator(
            board.projection, floors=FLOORS, bays=BAYS, path=config, size=display.size
        )
        keyboard = Keyboard()

        def frames(count: int = 4) -> None:
            """What the billboard's loop does: read the controls, draw a frame."""
            for _ in range(count):
                pygame.time.wait(20)  # X delivers what xdotool sent
                for control in read_controls(
                    keyboard,
                    now=0.0,
                    bpm=112.0,
                    key="C",
                    paused=False,
                    calibrating=calibrator.active,
                ):
                    calibrator.handle(control)
                overlay = calibrator.overlay() if calibrator.active else None
                display.draw(scene(lights), calibration=overlay)

        frames()
        start = calibrator.projection
        xdo("mousemove", "5", "5")  # focus follows the pointer: no window manager here
        xdo("key", "c")
        frames()
        assert calibrator.active
        # Drag the facade's top-left corner 40 px right and 25 px down.
        cx, cy = (round(v) for v in calibrator.state.mapped.outline[0])
        xdo("mousemove", str(cx), str(cy), "mousedown", "1")
        frames(2)
        xdo("mousemove", str(cx + 20), str(cy + 12))
        frames(2)
        xdo("mousemove", str(cx + 40), str(cy + 25), "mouseup", "1")
        frames()
        after_drag = calibrator.state.mapped.outline[0]
        assert abs(after_drag[0] - (cx + 40)) < 1.5 and abs(after_drag[1] - (cy + 25)) < 1.5
        # Tab to window 1 (corners 1, 2, 3, then windows 0, 1) and nudge it 10 right, 2 down.
        xdo("key", "Tab", "Tab", "Tab", "Tab", "Tab")
        frames()
        assert calibrator.state.selected == Window(1)
        before = calibrator.state.mapped.windows[1]
        xdo("key", "shift+Right", "Down", "Down")
        frames()
        nudged = calibrator.state.mapped.windows[1]
        for a, b in zip(before, nudged, strict=True):
            assert abs(b[0] - a[0] - 10) < 0.6 and abs(b[1] - a[1] - 2) < 0.6
        # Drag window 30's bottom-right vertex by a few pixels; undo it, redo it.
        vx, vy = (round(v) for v in calibrator.state.mapped.windows[30][2])
        xdo("mousemove", str(vx), str(vy), "mousedown", "1")
        frames(2)
        xdo("mousemove", str(vx + 6), str(vy + 5), "mouseup", "1")
        frames()
        dragged = calibrator.projection
        assert dragged.windows[30][2] != start.windows[30][2]
        assert dragged.windows[30][:2] == start.windows[30][:2]
        xdo("key", "ctrl+z")
        frames()
        assert calibrator.projection.windows[30] == start.windows[30]
        xdo("key", "ctrl+y")
        frames()
        assert calibrator.projection == dragged
        shot = tmp_path / "calibration_root.png"
        subprocess.run(
            [grab, "-display", xvfb, "-window", "root", str(shot)], check=True, timeout=30
        )
        # Save, and leave the calibration mode for the show.
        xdo("key", "ctrl+s")
        frames()
        assert calibrator.note == f"saved to {config}"
        xdo("key", "c")
        frames()
        assert not calibrator.active
        show_shot = tmp_path / "projection_root.png"
        subprocess.run(
            [grab, "-display", xvfb, "-window", "root", str(show_shot)], check=True, timeout=30
        )
        display.close()
    finally:
        pygame.quit()  # off the X server before the fixture stops it

    text = config.read_text()
    assert text.startswith(OPERATORS_FILE)  # the rest of the operator's file, as it was
    reloaded = load_billboard_config(load_installation(config, env={}))
    assert reloaded.projection == dragged
    assert reloaded.projection != start
    for saved, name in ((shot, "projection_calibration"), (show_shot, "projection_6x14")):
        image = pygame.image.load(str(saved))
        assert image.get_size() == (1920, 1080)
        assert colour_count(pygame.surfarray.array3d(image)) > 50
        small = pygame.transform.smoothscale(image, (960, 540))
        pygame.image.save(small, str(ARTIFACTS / f"{name}_960x540.png"))


def test_info_window_puts_the_invitation_on_a_second_window_and_not_on_the_building(
    video: None, building: Projection
) -> None:
    # The dummy driver has one display: the street window opens on it, beside the
    # projector's (on a venue's laptop, info_display names the street-level screen).
    street = Projection(CORNERS, building.windows, info="window", info_display=0)
    display = Display(size=(1280, 720), fullscreen=False, banner=BANNER, projection=street)
    try:
        display.draw(scene(checkerboard(False)))
        assert display.street_problem is None
        shown = display._street
        assert shown is not None
        image = pygame.surfarray.array3d(shown.surface)
        assert (image == 255).all(axis=2).sum() > 1000  # a large QR code's quiet zone
        facade = pygame.surfarray.array3d(display.surface)
        assert not (facade == 255).all(axis=2).any()  # …and none on the building
        far = Projection(CORNERS, building.windows, info="window", info_display=3)
        display.set_projection(far)
        display.draw(scene())
        assert display.street_problem == "info display 3 not found: 1 connected"
    finally:
        display.close()


def test_a_mapped_buildings_glows_are_made_before_the_show_but_not_while_calibrating(
    video: None,
) -> None:
    """A frame that makes a glow misses its time: a building of many window sizes has
    them all made with its layout (within `PREPARE_BYTES`), except while calibrating,
    when the mapping changes every frame."""
    pygame.display.init()
    pygame.display.set_mode((320, 180))
    windows = [pygame.Rect(0, 0, 20 + 8 * i, 24 + 8 * (i % 2)) for i in range(6)]
    colors = {rgb(view.color) for view in scene().tracks}
    calibrating = Glows()
    calibrating.prepare(scene(), windows, quick=True)
    assert not calibrating.made
    glows = Glows()
    glows.prepare(scene(), windows)
    assert glows.made == {(c, *bucket(r.width, r.height)) for c in colors for r in windows}
    huge = [pygame.Rect(0, 0, 2000 + 8 * i, 2000) for i in range(6)]  # past PREPARE_BYTES
    glows.prepare(scene(), huge)
    assert not any(key[1] >= 2000 for key in glows.made)
