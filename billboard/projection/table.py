"""The ``[billboard.projection]`` table of the installation's TOML file: read into a
`Projection` with errors an operator can act on, and written back by the calibration
mode, leaving the rest of the operator's file (comments included) as it was.

    [billboard.projection]
    corners = [[0.04, 0.04], [0.96, 0.04], [0.96, 0.96], [0.04, 0.96]]
    info = "region"                      # or "window", "off"
    info_region = [0.0, 0.84, 1.0, 0.16] # x, y, w, h of the facade
    underlay = "building.jpg"            # beside the TOML file, or an absolute path
    windows = [                          # floors × bays quads, floor by floor
      [[0.02, 0.03], [0.09, 0.03], [0.09, 0.12], [0.02, 0.12]],
      …
    ]

Corners are fractions of the projector's output (top left, top right, bottom right,
bottom left); windows are in facade coordinates, before the corner-pin (see the
package's docstring). Writing uses tomlkit, which edits a TOML document in place:
only the projection table is replaced (with the comments inside it).
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Final

import tomlkit
from tomlkit.items import Array, Table

from relay.config import ConfigError

from .geometry import (
    CORNER_MAX,
    CORNER_MIN,
    INFO_MODES,
    InfoMode,
    Projection,
    default_projection,
    quad_problem,
)
from .homography import Point, Quad

log = logging.getLogger("billboard.config")

KEYS: Final = ("corners", "windows", "info", "info_region", "info_display", "underlay")
# Where the calibration mode saves when the billboard was started without a file.
NEW_FILE: Final = "dialjam-projection.toml"


def parse_projection(value: Any, origin: str) -> Projection:
    """The table `value` (as tomllib read it) as a `Projection`; windows left out are
    an empty tuple (`resolve_projection` lays an even grid). Raises `ConfigError`."""
    if not isinstance(value, dict):
        raise ConfigError(f"{origin} must be a table")
    unknown = sorted(set(value) - set(KEYS))
    if unknown:
        raise ConfigError(f"{origin} has no setting {unknown[0]!r} (known: {', '.join(KEYS)})")
    if "corners" not in value:
        raise ConfigError(
            f"{origin}: give the facade's corners = [[x, y] × 4] (top left, top right, "
            "bottom right, bottom left) as fractions of the output"
        )
    corners = _quad(value["corners"], CORNER_MIN, CORNER_MAX, f"{origin}: corners")
    problem = quad_problem(corners)
    if problem is not None:
        raise ConfigError(
            f"{origin}: the corners {problem}; list them top left, top right, bottom right, "
            "bottom left"
        )
    windows_value = value.get("windows", [])
    if not isinstance(windows_value, list):
        raise ConfigError(f"{origin}: windows must be a list of quads [[u, v] × 4]")
    windows = []
    for n, item in enumerate(windows_value):
        quad = _quad(item, 0.0, 1.0, f"{origin}: window {n}")
        problem = quad_problem(quad)
        if problem == "is not convex":
            log.warning("%s: window %d is not convex; is a vertex out of place?", origin, n)
        elif problem is not None:
            raise ConfigError(f"{origin}: window {n} {problem}; list its vertices in order")
        windows.append(quad)
    info = value.get("info", "region")
    if info not in INFO_MODES:
        raise ConfigError(f"{origin}: info must be one of {', '.join(INFO_MODES)}, not {info!r}")
    mode: InfoMode = info
    region = value.get("info_region", default_projection(1, 1).info_region)
    ok = isinstance(region, list | tuple) and len(region) == 4
    ok = ok and all(_number(v) and 0 <= v <= 1 for v in region)
    if not ok or region[2] <= 0 or region[3] <= 0 or region[0] + region[2] > 1 + 1e-9:
        ok = False
    if not ok or region[1] + region[3] > 1 + 1e-9:
        raise ConfigError(
            f"{origin}: info_region must be [x, y, w, h] of the facade, inside it "
            "(fractions 0–1, w and h more than 0)"
        )
    display = value.get("info_display", 1)
    if not isinstance(display, int) or isinstance(display, bool) or display < 0:
        raise ConfigError(f"{origin}: info_display must be a display number, 0 or more")
    underlay = value.get("underlay", "")
    if not isinstance(underlay, str):
        raise ConfigError(f"{origin}: underlay must be the path of a photo of the building")
    x, y, w, h = (float(v) for v in region)
    return Projection(corners, tuple(windows), mode, (x, y, w, h), display, underlay)


def resolve_projection(projection: Projection, floors: int, bays: int) -> Projection:
    """`projection` with its windows checked against the facade's `floors` × `bays`
    (an even grid when none were given). Raises `ConfigError`."""
    if not projection.windows:
        grid = default_projection(floors, bays)
        return Projection(
            projection.corners,
            grid.windows,
            projection.info,
            projection.info_region,
            projection.info_display,
            projection.underlay,
        )
    if len(projection.windows) != floors * bays:
        raise ConfigError(
            f"[billboard.projection] windows lists {len(projection.windows)} quads; the "
            f"facade's floors × bays is {floors} × {bays} = {floors * bays}"
        )
    return projection


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _quad(value: Any, low: float, high: float, where: str) -> Quad:
    ok = isinstance(value, list) and len(value) == 4
    ok = ok and all(isinstance(p, list) and len(p) == 2 and all(map(_number, p)) for p in value)
    if not ok:
        raise ConfigError(f"{where} must be four points [[x, y], [x, y], [x, y], [x, y]]")
    points: list[Point] = [(float(p[0]), float(p[1])) for p in value]
    for x, y in points:
        if not (low <= x <= high and low <= y <= high):
            raise ConfigError(f"{where}: ({x}, {y}) is outside {low:g}…{high:g}")
    return points[0], points[1], points[2], points[3]


# -- writing ------------------------------------------------------------------------------


def projection_table(projection: Projection, bays: int) -> Table:
    """`projection` as a TOML table, windows one per line, a comment per floor."""
    table = tomlkit.table()
    table.add(tomlkit.comment("Set by eye in the billboard's calibration mode (C; Ctrl+S saves)."))
    table.add(tomlkit.comment("corners: top left, top right, bottom right, bottom left,"))
    table.add(tomlkit.comment("as fractions of the projector's output."))
    table.add("corners", _points(projection.corners))
    table.add("info", projection.info)
    table.add("info_region", list(projection.info_region))
    table.add("info_display", projection.info_display)
    if projection.underlay:
        table.add("underlay", projection.underlay)
    table.add(tomlkit.comment("windows: one quad per window (vertices in the corners' order)"))
    table.add(tomlkit.comment("in facade coordinates, 0–1 inside the corners; floor by floor."))
    windows = tomlkit.array()
    windows.multiline(True)
    for index, quad in enumerate(projection.windows):
        if bays and index % bays == 0:
            windows.add_line(_points(quad), comment=f"floor {index // bays}")
        else:
            windows.add_line(_points(quad))
    table.add("windows", windows)
    return table


def _points(quad: Quad) -> Array:
    points = tomlkit.array()
    points.extend([[x, y] for x, y in quad])
    return points


def save_projection(path: Path | None, projection: Projection, *, floors: int, bays: int) -> Path:
    """Write `projection` into the ``[billboard.projection]`` table of the file at
    `path`, keeping everything else in it; a file that does not exist is created (with
    the facade's `floors` and `bays`, so it reloads to the same windows). `path` None:
    `NEW_FILE` in the working directory. Returns the path written. The file is replaced
    in one rename: a crash mid-write leaves the old one."""
    target = Path(path) if path is not None else Path.cwd() / NEW_FILE
    if target.exists():
        doc = tomlkit.parse(target.read_text(encoding="utf-8"))
    else:
        doc = tomlkit.document()
        doc.add(tomlkit.comment("dialjam installation: python -m billboard --config THIS_FILE"))
        board = tomlkit.table(is_super_table=True)
        facade = tomlkit.table()
        facade.add("floors", floors)
        facade.add("bays", bays)
        board.add("facade", facade)
        doc.add("billboard", board)
    board_item = doc.get("billboard")
    if board_item is None:
        board_item = tomlkit.table(is_super_table=True)
        doc.add("billboard", board_item)
    if not isinstance(board_item, Table):
        raise ConfigError(f"{target}: [billboard] must be a table to save the projection in")
    board_item["projection"] = projection_table(projection, bays)
    text = tomlkit.dumps(doc)
    _write_atomically(target, text)
    return target


def _write_atomically(target: Path, text: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    mode = target.stat().st_mode & 0o777 if target.exists() else 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
