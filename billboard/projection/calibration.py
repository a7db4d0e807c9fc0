"""The calibration mode's state machine: the operator lines the projection up with
the building by eye, on the live output, and each action gives a new `Calibration`
(a frozen value) holding a new `Projection`.

    state = Calibration(projection, size=(1920, 1080))
    state = state.apply(Press((412, 96)))     # grab the nearest handle
    state = state.apply(Move((420, 90)))      # drag it
    state = state.apply(Release((420, 90)))   # one undo step for the whole drag
    state = state.apply(Nudge(0, -1))         # a pixel up (Shift: 10)

What can be selected (`Target`): a facade corner, a window's vertex (only by the mouse:
there are four per window), a whole window, or the whole facade (press inside it but
on no window: a projector knocked askew is put back by one drag). Tab cycles the
corners, then the windows.

Positions come in output pixels, as the mouse gives them; corners are kept as
fractions of the output and windows in facade coordinates (see `geometry`), so a drag
or nudge of one pixel moves the handle one pixel on the wall whatever the perspective.

Snapping (off until toggled) applies to drags, not nudges (a nudge is deliberate): a
window's vertex snaps to the lines of the other windows' vertices (the floors' tops and
bottoms, the bays' sides, which on a real facade are shared), a corner to the edges of
the output and to the other corners' lines, each within `SNAP_PX` pixels.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Final, TypeGuard

from .geometry import MappedFacade, Projection, inside, round_quad
from .homography import Point, Quad

HANDLE_RADIUS_PX: Final = 18.0  # a press this near a handle grabs it
SNAP_PX: Final = 10.0
HISTORY: Final = 200  # undo steps kept
CORNER_NAMES: Final = ("top left", "top right", "bottom right", "bottom left")


@dataclass(frozen=True, slots=True)
class Corner:
    index: int  # 0 top left, 1 top right, 2 bottom right, 3 bottom left


@dataclass(frozen=True, slots=True)
class Vertex:
    window: int
    index: int  # as `Corner`


@dataclass(frozen=True, slots=True)
class Window:
    index: int  # floor * bays + bay


@dataclass(frozen=True, slots=True)
class WholeFacade:
    pass


Target = Corner | Vertex | Window | WholeFacade


@dataclass(frozen=True, slots=True)
class Press:
    """The mouse button went down at `pos` (output pixels): grab what is there."""

    pos: Point


@dataclass(frozen=True, slots=True)
class Move:
    """The mouse is at `pos`: the grabbed handle follows (nothing when none is)."""

    pos: Point


@dataclass(frozen=True, slots=True)
class Release:
    """The mouse button went up at `pos`: the drag ends, as one undo step."""

    pos: Point


@dataclass(frozen=True, slots=True)
class Nudge:
    """Move the selection by (`dx`, `dy`) output pixels."""

    dx: float
    dy: float


@dataclass(frozen=True, slots=True)
class Select:
    """Select the next (`step` 1) or previous (-1) corner or window."""

    step: int = 1


@dataclass(frozen=True, slots=True)
class ToggleSnap:
    pass


@dataclass(frozen=True, slots=True)
class Undo:
    pass


@dataclass(frozen=True, slots=True)
class Redo:
    pass


CalibrationAction = Press | Move | Release | Nudge | Select | ToggleSnap | Undo | Redo


@dataclass(frozen=True, slots=True)
class Drag:
    start: Projection  # for the undo step
    offset: Point  # handle minus pointer at the press, so the handle never jumps


@dataclass(frozen=True)
class Calibration:
    """The mapping being calibrated on an output of `size` pixels, what is selected,
    whether snapping is on, a drag in progress, and the undo and redo histories."""

    projection: Projection
    size: tuple[int, int]
    selected: Target | None = Corner(0)
    snap: bool = False
    drag: Drag | None = None
    undo_stack: tuple[Projection, ...] = ()
    redo_stack: tuple[Projection, ...] = ()

    @cached_property
    def mapped(self) -> MappedFacade:
        """The mapping in this output's pixels."""
        return self.projection.mapped(self.size)

    def apply(self, action: CalibrationAction) -> Calibration:
        """The state after `action`."""
        if isinstance(action, Press):
            return self._press(action.pos)
        if isinstance(action, Move):
            return self._follow(action.pos) if self.drag is not None else self
        if isinstance(action, Release):
            if self.drag is None:
                return self
            moved = self._follow(action.pos)
            start = self.drag.start
            if moved.projection == start:
                return replace(moved, drag=None)
            return replace(moved, drag=None)._pushed(start)
        if isinstance(action, Nudge):
            if self.selected is None or self.drag is not None:
                return self
            step = self._moved(self.selected, (action.dx, action.dy), snap=False)
            return replace(self, projection=step)._pushed(self.projection)
        if isinstance(action, Select):
            return replace(self, selected=self._cycled(action.step))
        if isinstance(action, ToggleSnap):
            return replace(self, snap=not self.snap)
        if isinstance(action, Undo):
            if not self.undo_stack or self.drag is not None:
                return self
            *rest, last = self.undo_stack
            return replace(
                self,
                projection=last,
                undo_stack=tuple(rest),
                redo_stack=(*self.redo_stack, self.projection),
            )
        if isinstance(action, Redo):
            if not self.redo_stack or self.drag is not None:
                return self
            *rest, last = self.redo_stack
            return replace(
                self,
                projection=last,
                redo_stack=tuple(rest),
                undo_stack=(*self.undo_stack, self.projection)[-HISTORY:],
            )
        raise TypeError(f"not a calibration action: {action!r}")

    def handle(self, target: Target) -> Point:
        """Where `target`'s handle is, in output pixels."""
        mapped = self.mapped
        if isinstance(target, Corner):
            return mapped.outline[target.index]
        if isinstance(target, Vertex):
            return mapped.windows[target.window][target.index]
        if isinstance(target, Window):
            return centroid(mapped.windows[target.index])
        return centroid(mapped.outline)

    def target_at(self, pos: Point) -> Target | None:
        """What a press at `pos` grabs: the nearest handle within `HANDLE_RADIUS_PX`
        (a corner before a window's vertex on a tie), else the window under it, else
        the whole facade, else nothing."""
        mapped = self.mapped
        handles: list[tuple[float, int, Target]] = [
            (_distance(p, pos), 0, Corner(i)) for i, p in enumerate(mapped.outline)
        ]
        handles += [
            (_distance(p, pos), 1, Vertex(w, k))
            for w, quad in enumerate(mapped.windows)
            for k, p in enumerate(quad)
        ]
        distance, _, nearest = min(handles, key=lambda h: (h[0], h[1]))
        if distance <= HANDLE_RADIUS_PX:
            return nearest
        for w, quad in enumerate(mapped.windows):
            if inside(quad, pos):
                return Window(w)
        return WholeFacade() if inside(mapped.outline, pos) else None

    # -- the moves -----------------------------------------------------------------------

    def _pushed(self, previous: Projection) -> Calibration:
        """This state with `previous` as the newest undo step (redo forgotten)."""
        return replace(self, undo_stack=(*self.undo_stack, previous)[-HISTORY:], redo_stack=())

    def _press(self, pos: Point) -> Calibration:
        target = self.target_at(pos)
        if target is None:
            return replace(self, selected=None, drag=None)
        handle = self.handle(target)
        offset = (handle[0] - pos[0], handle[1] - pos[1])
        return replace(self, selected=target, drag=Drag(self.projection, offset))

    def _follow(self, pos: Point) -> Calibration:
        assert self.drag is not None and self.selected is not None
        handle = self.handle(self.selected)
        want = (pos[0] + self.drag.offset[0], pos[1] + self.drag.offset[1])
        delta = (want[0] - handle[0], want[1] - handle[1])
        if delta == (0.0, 0.0):
            return self
        return replace(self, projection=self._moved(self.selected, delta, snap=self.snap))

    def _moved(self, target: Target, delta: Point, *, snap: bool) -> Projection:
        """The projection with `target` moved by `delta` output pixels."""
        p = self.projection
        if isinstance(target, Corner | WholeFacade):
            indexes = range(4) if isinstance(target, WholeFacade) else [target.index]
            return replace(p, corners=self._corners_moved(indexes, delta, snap))
        windows = list(p.windows)
        if isinstance(target, Vertex):
            quad = list(windows[target.window])  # the other vertices stay exactly as they were
            u, v = self._vertex_moved(target.window, target.index, delta, snap)
            quad[target.index] = (round(u, 6), round(v, 6))
            windows[target.window] = _quad(quad)
        elif isinstance(target, Window):
            windows[target.index] = self._window_moved(target.index, delta, snap)
        return replace(p, windows=tuple(windows))

    def _corners_moved(self, indexes: Iterable[int], delta: Point, snap: bool) -> Quad:
        w, h = self.size
        outline = self.mapped.outline
        corners = list(self.projection.corners)  # the others stay exactly as they were
        moving = list(indexes)
        for i in moving:
            x, y = outline[i][0] + delta[0], outline[i][1] + delta[1]
            if snap and len(moving) == 1:
                others = [outline[j] for j in range(4) if j != i]
                x = _snapped(x, [0.0, float(w), *(o[0] for o in others)])
                y = _snapped(y, [0.0, float(h), *(o[1] for o in others)])
            corners[i] = (round(x / w, 6), round(y / h, 6))
        return _quad(corners)

    def _vertex_moved(self, window: int, index: int, delta: Point, snap: bool) -> Point:
        mapped = self.mapped
        x, y = mapped.windows[window][index]
        u, v = mapped.to_facade((x + delta[0], y + delta[1]))
        if snap:
            u, v = self._snapped_uv(window, (u, v))
        return _clamp01(u), _clamp01(v)

    def _window_moved(self, window: int, delta: Point, snap: bool) -> Quad:
        mapped = self.mapped
        moved = [mapped.to_facade((x + delta[0], y + delta[1])) for x, y in mapped.windows[window]]
        if snap:  # the top-left vertex decides; the window moves whole
            su, sv = self._snapped_uv(window, moved[0])
            du, dv = su - moved[0][0], sv - moved[0][1]
            moved = [(u + du, v + dv) for u, v in moved]
        # Kept inside the facade by shifting, not squashing, the window.
        du = max(0.0, -min(u for u, _ in moved)) - max(0.0, max(u for u, _ in moved) - 1)
        dv = max(0.0, -min(v for _, v in moved)) - max(0.0, max(v for _, v in moved) - 1)
        return round_quad(_quad([(_clamp01(u + du), _clamp01(v + dv)) for u, v in moved]))

    def _snapped_uv(self, window: int, point: Point) -> Point:
        """`point` (facade coordinates) snapped to the other windows' vertex lines when
        one is within `SNAP_PX` pixels on the wall."""
        u, v = point
        others = [q for i, q in enumerate(self.projection.windows) if i != window]
        us = sorted({p[0] for q in others for p in q})
        vs = sorted({p[1] for q in others for p in q})
        here = self.mapped.to_screen(point)
        best_u = min(us, key=lambda c: abs(c - u), default=None)
        if best_u is not None and _distance(self.mapped.to_screen((best_u, v)), here) <= SNAP_PX:
            u = best_u
        best_v = min(vs, key=lambda c: abs(c - v), default=None)
        if best_v is not None and _distance(self.mapped.to_screen((u, best_v)), here) <= SNAP_PX:
            v = best_v
        return u, v

    def _cycled(self, step: int) -> Target:
        order: list[Target] = [Corner(i) for i in range(4)]
        order += [Window(i) for i in range(len(self.projection.windows))]
        current = self.selected
        if isinstance(current, Vertex):
            current = Window(current.window)
        index = order.index(current) if current in order else -1 if step > 0 else 0
        return order[(index + step) % len(order)]


def describe(target: Target | None, bays: int) -> str:
    """What is selected, in the operator's words."""
    if target is None:
        return "nothing"
    if isinstance(target, Corner):
        return f"corner {CORNER_NAMES[target.index]}"
    if isinstance(target, WholeFacade):
        return "the whole facade"
    index = target.window if isinstance(target, Vertex) else target.index
    where = f"window {index} (floor {index // bays}, bay {index % bays})"
    if isinstance(target, Vertex):
        return f"{where}, {CORNER_NAMES[target.index]} vertex"
    return where


def centroid(quad: Quad) -> Point:
    """The mean of `quad`'s corners."""
    return sum(p[0] for p in quad) / 4, sum(p[1] for p in quad) / 4


def _quad(points: list[Point]) -> Quad:
    return points[0], points[1], points[2], points[3]


def _distance(a: Point, b: Point) -> float:
    return float(((a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2) ** 0.5)


def _snapped(value: float, lines: list[float]) -> float:
    nearest = min(lines, key=lambda line: abs(line - value))
    return nearest if abs(nearest - value) <= SNAP_PX else value


def _clamp01(value: float) -> float:
    return min(1.0, max(0.0, value))


ACTION_TYPES: Final = (Press, Move, Release, Nudge, Select, ToggleSnap, Undo, Redo)


def is_action(value: object) -> TypeGuard[CalibrationAction]:
    """`value` is one of the calibration mode's actions."""
    return isinstance(value, ACTION_TYPES)
