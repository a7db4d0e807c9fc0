"""Projection mapping without pixels: the corner-pin, the calibration mode's state
machine, and the ``[billboard.projection]`` table read, written and read again."""

from __future__ import annotations

import logging
import math
import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billboard.config import load_billboard_config
from billboard.projection import (
    Homography,
    Projection,
    Quad,
    default_projection,
    even_grid,
    quad_problem,
)
from billboard.projection.calibration import (
    HISTORY,
    SNAP_PX,
    Calibration,
    Corner,
    Move,
    Nudge,
    Press,
    Redo,
    Release,
    Select,
    ToggleSnap,
    Undo,
    Vertex,
    WholeFacade,
    Window,
)
from billboard.projection.table import NEW_FILE, save_projection
from relay.config import ConfigError, load_installation

SIZE = (1920, 1080)
# A facade seen from below and to the left: no two sides parallel.
SKEWED: Quad = ((0.12, 0.06), (0.9, 0.14), (0.95, 0.92), (0.05, 0.97))


def close(a: tuple[float, float], b: tuple[float, float], tol: float = 1e-9) -> bool:
    """Within `tol` (edits round to a millionth of the output: 0.002 px at 1920)."""
    return math.isclose(a[0], b[0], abs_tol=tol) and math.isclose(a[1], b[1], abs_tol=tol)


# -- the corner-pin --------------------------------------------------------------------


def test_the_unit_squares_corners_land_on_the_four_points_given() -> None:
    pin = Homography.square_to_quad(SKEWED)
    for corner, target in zip(((0, 0), (1, 0), (1, 1), (0, 1)), SKEWED, strict=True):
        assert close(pin.map(corner), target)


def test_a_rectangle_is_pinned_by_a_plain_scale_and_shift() -> None:
    pin = Homography.square_to_quad(((10, 20), (110, 20), (110, 70), (10, 70)))
    assert pin.m[6:8] == (0.0, 0.0)  # affine: no perspective terms
    assert close(pin.map((0.5, 0.5)), (60, 45))


def test_straight_lines_stay_straight_and_the_centre_is_where_the_diagonals_cross() -> None:
    pin = Homography.square_to_quad(SKEWED)
    centre = pin.map((0.5, 0.5))
    # The diagonals of the pinned quad cross at the image of the square's centre.
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = SKEWED
    t = ((x3 - x0) * (y3 - y1) - (y3 - y0) * (x3 - x1)) / (
        (x2 - x0) * (y3 - y1) - (y2 - y0) * (x3 - x1)
    )
    assert close(centre, (x0 + t * (x2 - x0), y0 + t * (y2 - y0)))


points = st.tuples(st.floats(0, 1), st.floats(0, 1))


@given(points)
def test_the_inverse_takes_every_point_back(point: tuple[float, float]) -> None:
    pin = Homography.square_to_quad(SKEWED).scaled(*SIZE)
    assert close(pin.inverse().map(pin.map(point)), point, 1e-9)


def test_quad_to_quad_takes_one_quad_onto_another() -> None:
    source: Quad = ((0, 0), (200, 0), (200, 80), (0, 80))
    warp = Homography.quad_to_quad(source, SKEWED)
    for a, b in zip(source, SKEWED, strict=True):
        assert close(warp.map(a), b)


def test_three_corners_on_a_line_have_no_corner_pin() -> None:
    with pytest.raises(ValueError, match="on a line"):
        Homography.square_to_quad(((0, 0), (0.5, 0), (1, 0), (0, 1)))


def test_a_quad_that_crosses_itself_or_caves_in_is_named() -> None:
    assert quad_problem(SKEWED) is None
    assert quad_problem(((0, 0), (1, 1), (1, 0), (0, 1))) == "crosses itself"
    assert quad_problem(((0, 0), (1, 0), (0.3, 0.3), (0, 1))) == "is not convex"
    assert quad_problem(((0, 0), (1, 0), (2, 0), (3, 0))) == "has no area"


def test_the_mapped_facade_puts_windows_in_pixels_and_back() -> None:
    projection = Projection(SKEWED, even_grid(6, 14))
    mapped = projection.mapped(SIZE)
    assert close(mapped.outline[2], (0.95 * 1920, 0.92 * 1080), 1e-6)
    assert len(mapped.windows) == 84
    corner = mapped.windows[15][0]
    assert close(mapped.to_facade(corner), projection.windows[15][0], 1e-9)


# -- the calibration mode --------------------------------------------------------------


def calibration(**kwargs: object) -> Calibration:
    return Calibration(Projection(SKEWED, even_grid(3, 4)), SIZE, **kwargs)  # type: ignore[arg-type]


def drag(state: Calibration, start: tuple[float, float], end: tuple[float, float]) -> Calibration:
    state = state.apply(Press(start))
    mid = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)
    return state.apply(Move(mid)).apply(Move(end)).apply(Release(end))


def test_dragging_a_corner_moves_it_and_the_windows_follow_in_facade_coordinates() -> None:
    state = calibration()
    corner = state.mapped.outline[0]
    grab = (corner[0] + 5, corner[1] - 4)  # near enough: the handle does not jump
    after = drag(state, grab, (grab[0] + 100, grab[1] + 50))
    assert after.selected == Corner(0)
    assert close(after.mapped.outline[0], (corner[0] + 100, corner[1] + 50), 0.01)
    assert after.projection.corners[1:] == state.projection.corners[1:]
    assert after.projection.windows == state.projection.windows  # …so they moved on the wall
    assert after.mapped.windows[0] != state.mapped.windows[0]
    assert after.drag is None and after.undo_stack == (state.projection,)


def test_dragging_a_windows_vertex_moves_that_vertex_only() -> None:
    state = calibration()
    vertex = state.mapped.windows[5][2]
    after = drag(state, vertex, (vertex[0] + 12, vertex[1] + 7))
    assert after.selected == Vertex(5, 2)
    assert close(after.mapped.windows[5][2], (vertex[0] + 12, vertex[1] + 7), 0.01)
    assert after.mapped.windows[5][:2] == state.mapped.windows[5][:2]
    assert after.projection.windows[4] == state.projection.windows[4]
    assert after.projection.corners == state.projection.corners


def test_dragging_inside_a_window_moves_the_whole_window_and_on_the_wall_the_facade() -> None:
    state = calibration()
    quad = state.mapped.windows[6]
    inside = ((quad[0][0] + quad[2][0]) / 2, (quad[0][1] + quad[2][1]) / 2)
    moved = drag(state, inside, (inside[0] + 20, inside[1]))
    assert moved.selected == Window(6)
    for before, after in zip(quad, moved.mapped.windows[6], strict=True):
        assert close(after, (before[0] + 20, before[1]), 0.5)  # perspective: ± half a pixel
    wall = state.mapped.to_screen((0.5, 0.99))  # the facade, between windows
    shifted = drag(state, wall, (wall[0] - 30, wall[1] + 10))
    assert shifted.selected == WholeFacade()
    for before, after in zip(state.mapped.outline, shifted.mapped.outline, strict=True):
        assert close(after, (before[0] - 30, before[1] + 10), 0.01)


def test_a_press_on_nothing_selects_nothing_and_moves_nothing() -> None:
    state = calibration()
    after = drag(state, (2, 2), (300, 300))
    assert after.selected is None and after.projection == state.projection
    assert after.undo_stack == ()
    assert after.apply(Nudge(1, 0)).projection == state.projection


def test_a_nudge_moves_the_selection_one_pixel_and_shift_makes_it_ten() -> None:
    state = calibration().apply(Select(1))  # corner 0 → corner 1
    assert state.selected == Corner(1)
    before = state.mapped.outline[1]
    once = state.apply(Nudge(1, 0))
    assert close(once.mapped.outline[1], (before[0] + 1, before[1]), 0.01)
    ten = once.apply(Nudge(0, -10))
    assert close(ten.mapped.outline[1], (before[0] + 1, before[1] - 10), 0.01)
    assert len(ten.undo_stack) == 2


def test_tab_cycles_the_corners_then_the_windows_and_wraps() -> None:
    state = calibration()
    seen = []
    for _ in range(4 + 12 + 1):
        state = state.apply(Select(1))
        seen.append(state.selected)
    assert seen[:3] == [Corner(1), Corner(2), Corner(3)]
    assert seen[3:15] == [Window(i) for i in range(12)]
    assert seen[15:] == [Corner(0), Corner(1)]
    assert calibration().apply(Select(-1)).selected == Window(11)


def test_undo_and_redo_walk_the_history_and_a_new_edit_forgets_the_redo() -> None:
    start = calibration()
    one = start.apply(Nudge(5, 0))
    two = one.apply(Nudge(5, 0))
    back = two.apply(Undo())
    assert back.projection == one.projection
    assert back.apply(Undo()).projection == start.projection
    assert back.apply(Undo()).apply(Undo()).projection == start.projection  # nothing older
    assert back.apply(Redo()).projection == two.projection
    forked = back.apply(Nudge(0, 3))
    assert forked.redo_stack == () and forked.apply(Redo()) == forked


def test_the_history_is_bounded() -> None:
    state = calibration()
    for _ in range(HISTORY + 30):
        state = state.apply(Nudge(1, 0))
    assert len(state.undo_stack) == HISTORY


def test_snap_lines_a_dragged_vertex_up_with_the_other_windows() -> None:
    state = calibration()
    # Window 1's top-left vertex, dragged to a few pixels off window 0's top edge.
    target = state.mapped.windows[1][0]
    line_v = state.projection.windows[0][0][1]
    off = (target[0] + 3, target[1] + SNAP_PX / 2)
    free = drag(state, target, off)
    assert free.projection.windows[1][0][1] != line_v
    snapped = drag(state.apply(ToggleSnap()), target, off)
    assert snapped.snap and snapped.projection.windows[1][0][1] == line_v
    far = (target[0], target[1] + 4 * SNAP_PX)
    assert drag(state.apply(ToggleSnap()), target, far).projection.windows[1][0][1] != line_v


def test_snap_puts_a_corner_on_the_edge_of_the_output() -> None:
    state = calibration().apply(ToggleSnap())
    corner = state.mapped.outline[3]
    near_edge = (3.0, corner[1])
    after = drag(state, corner, near_edge)
    assert after.projection.corners[3][0] == 0.0


def test_a_window_is_kept_inside_the_facade() -> None:
    state = calibration()
    quad = state.mapped.windows[0]
    centre = ((quad[0][0] + quad[2][0]) / 2, (quad[0][1] + quad[2][1]) / 2)
    after = drag(state, centre, (centre[0] - 800, centre[1] - 800))
    us = [u for u, _ in after.projection.windows[0]]
    vs = [v for _, v in after.projection.windows[0]]
    assert min(us) == 0.0 and min(vs) == 0.0
    assert quad_problem(after.projection.windows[0]) is None  # moved whole, not squashed


# -- the table -------------------------------------------------------------------------

OPERATORS_FILE = """\
# The Rialto, autumn 2026 — keep this comment
[relay]
port = 8080  # the venue's port

[billboard]
phone = "+1 555 010 0199"   # on the banner
layout = "projection"

[billboard.facade]
floors = 3
bays = 4
"""


def load(path: Path) -> Projection:
    config = load_billboard_config(load_installation(path, env={}))
    assert config.layout == "projection" and config.projection is not None
    return config.projection


def test_saving_rewrites_only_the_projection_table_and_reloads_to_the_same_geometry(
    tmp_path: Path,
) -> None:
    path = tmp_path / "rialto.toml"
    path.write_text(OPERATORS_FILE)
    state = calibration()
    state = drag(state, state.mapped.outline[0], (250.5, 77.25))
    state = state.apply(Select(5)).apply(Nudge(3, -2))  # a window, nudged
    save_projection(path, state.projection, floors=3, bays=4)
    text = path.read_text()
    assert text.startswith(OPERATORS_FILE)  # the operator's file, comments and all
    assert load(path) == state.projection
    # Saved again after another change: still one table, still the same file around it.
    again = state.apply(Nudge(1, 1))
    save_projection(path, again.projection, floors=3, bays=4)
    assert path.read_text().count("[billboard.projection]") == 1
    assert path.read_text().startswith(OPERATORS_FILE)
    assert load(path) == again.projection


def test_without_a_file_the_mapping_goes_to_a_new_one_that_reloads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    projection = Projection(SKEWED, even_grid(2, 5), info="off")
    written = save_projection(None, projection, floors=2, bays=5)
    assert written == tmp_path / NEW_FILE
    assert load(written) == projection
    tables = tomllib.loads(written.read_text())["billboard"]
    assert tables["facade"] == {"floors": 2, "bays": 5}


def test_a_projection_table_alone_means_the_projection_layout_and_an_even_grid(
    tmp_path: Path,
) -> None:
    path = tmp_path / "venue.toml"
    path.write_text("[billboard.projection]\ncorners = [[0, 0], [1, 0], [1, 1], [0, 1]]\n")
    projection = load(path)
    assert len(projection.windows) == 7 * 8 and projection.info == "region"
    flat = load_billboard_config(load_installation(None, env={}))
    assert flat.layout == "dashboard" and flat.projection is None
    asked = load_billboard_config(load_installation(None, env={}), {"layout": "projection"})
    assert asked.projection == default_projection(7, 8)


@pytest.mark.parametrize(
    ("table", "fragment"),
    [
        ("corners = [[0, 0], [1, 0], [1, 1]]", "corners must be four points"),
        ("corners = [[0, 0], [1, 1], [1, 0], [0, 1]]", "corners crosses itself"),
        ("corners = [[0, 0], [3, 0], [1, 1], [0, 1]]", r"outside -0.5…1.5"),
        ("windows = [[[0, 0], [0.1, 0], [0.1, 0.1], [0, 0.1]]]", "give the facade's corners"),
        (
            "corners = [[0, 0], [1, 0], [1, 1], [0, 1]]\n"
            "windows = [[[0, 0], [0.1, 0], [0.1, 0.1], [0, 0.1]]]",
            r"windows lists 1 quads; the facade's floors × bays is 7 × 8 = 56",
        ),
        (
            "corners = [[0, 0], [1, 0], [1, 1], [0, 1]]\n"
            "windows = [[[0, 0], [0.1, 0.1], [0.1, 0], [0, 0.1]]]",
            "window 0 crosses itself",
        ),
        (
            "corners = [[0, 0], [1, 0], [1, 1], [0, 1]]\n"
            "windows = [[[0, 0], [1.2, 0], [0.1, 0.1], [0, 0.1]]]",
            r"window 0: \(1.2, 0.0\) is outside 0…1",
        ),
        ("corners = [[0, 0], [1, 0], [1, 1], [0, 1]]\ninfo = 'banner'", "info must be one of"),
        (
            "corners = [[0, 0], [1, 0], [1, 1], [0, 1]]\ninfo_region = [0, 0.9, 1, 0.2]",
            "info_region must be",
        ),
        ("corners = [[0, 0], [1, 0], [1, 1], [0, 1]]\nkeystone = 2", "no setting 'keystone'"),
    ],
)
def test_a_bad_projection_table_says_what_to_fix(tmp_path: Path, table: str, fragment: str) -> None:
    path = tmp_path / "venue.toml"
    path.write_text(f"[billboard.projection]\n{table}\n")
    with pytest.raises(ConfigError, match=fragment):
        load_billboard_config(load_installation(path, env={}))


def test_a_concave_window_is_loaded_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    windows = list(even_grid(1, 2))
    windows[1] = ((0.6, 0.2), (0.9, 0.2), (0.7, 0.3), (0.6, 0.8))
    path = tmp_path / "venue.toml"
    save_projection(path, Projection(SKEWED, tuple(windows)), floors=1, bays=2)
    with caplog.at_level(logging.WARNING, logger="billboard.config"):
        assert load(path).windows[1] == windows[1]
    assert "window 1 is not convex" in caplog.text


def test_an_unknown_layout_is_refused() -> None:
    with pytest.raises(ConfigError, match="layout must be dashboard or projection"):
        load_billboard_config(load_installation(None, env={}), {"layout": "dome"})
