"""The calibration mode's adapter: the frontend hands it the calibration actions that
`controls` read, it steps the state machine (billboard/projection/calibration.py),
saves the mapping into the installation's file on Ctrl+S, and says what the display
shows over the live output (`overlay`)."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from relay.config import ConfigError

from .controls import CALIBRATION_LINES, Ui
from .display.calibration_view import CalibrationOverlay
from .projection import Projection, Quad, quad_problem
from .projection.calibration import Calibration, CalibrationAction, describe, is_action
from .projection.table import NEW_FILE, save_projection

log = logging.getLogger("billboard.calibrate")


class Calibrator:
    """The mapping being calibrated on an output of `size` pixels, for a facade of
    `floors` × `bays`, saved to `path` (None: `NEW_FILE` in the working directory,
    which then becomes the file saved to)."""

    def __init__(
        self,
        projection: Projection,
        *,
        floors: int,
        bays: int,
        path: Path | None,
        size: tuple[int, int],
    ) -> None:
        self.active = False
        self.state = Calibration(projection, size)
        self.floors, self.bays = floors, bays
        self.path = path
        self.saved = projection  # what the file holds (or held when we started)
        self.underlay_shown = False
        self.note = ""  # the last save's outcome

    @property
    def projection(self) -> Projection:
        return self.state.projection

    @property
    def dirty(self) -> bool:
        """Changed since the last save."""
        return self.state.projection != self.saved

    def toggle(self) -> None:
        """Into or out of the calibration mode (the mapping stays as it was set)."""
        self.active = not self.active
        if self.active:
            self.state = replace(self.state, drag=None)

    def resize(self, size: tuple[int, int]) -> None:
        """The output is now `size` pixels."""
        if size != self.state.size:
            self.state = replace(self.state, size=size, drag=None)

    def apply(self, action: CalibrationAction) -> None:
        """One step of the state machine (ignored when the mode is off)."""
        if self.active:
            self.state = self.state.apply(action)

    def handle(self, control: object) -> bool:
        """Act on `control` if it is the calibration mode's (an action, or the Ui's
        "calibrate", "underlay" and "save_mapping"); False when it is not."""
        if is_action(control):
            self.apply(control)
        elif isinstance(control, Ui) and control.action == "calibrate":
            self.toggle()
        elif isinstance(control, Ui) and control.action == "underlay":
            self.toggle_underlay()
        elif isinstance(control, Ui) and control.action == "save_mapping":
            log.info("calibration: %s", self.save())
        else:
            return False
        return True

    def toggle_underlay(self) -> None:
        self.underlay_shown = not self.underlay_shown

    def underlay_path(self) -> Path | None:
        """The building's photo (relative paths start beside the config file)."""
        name = self.projection.underlay
        if not name:
            return None
        path = Path(name).expanduser()
        if not path.is_absolute():
            path = (self.path.parent if self.path is not None else Path.cwd()) / path
        return path

    def save(self) -> str:
        """Write the mapping into the file; what happened, for the screen."""
        bad = [i for i, q in enumerate(self.projection.windows) if _refused(q)]
        if _refused(self.projection.corners):
            self.note = "not saved: the facade's corners cross; undo or drag one back"
        elif bad:
            listed = ", ".join(str(i) for i in bad[:8])
            self.note = f"not saved: window {listed} crosses itself (drawn in red)"
        else:
            try:
                written = save_projection(
                    self.path, self.projection, floors=self.floors, bays=self.bays
                )
            except (OSError, ConfigError) as exc:
                self.note = f"not saved: {exc}"
            else:
                new = self.path is None
                self.path, self.saved = written, self.projection
                self.note = f"saved to {written}" + (
                    f" (start with --config {written.name})" if new else ""
                )
        return self.note

    def overlay(self) -> CalibrationOverlay:
        """What the display draws over the live output."""
        state = self.state
        target = str(self.path) if self.path is not None else f"{NEW_FILE} (a new file here)"
        title = (
            f"CALIBRATION · {describe(state.selected, self.bays)} · "
            f"snap {'on' if state.snap else 'off'}"
            f"{' · unsaved changes' if self.dirty else ''}"
        )
        lines = (title, *CALIBRATION_LINES, f"Ctrl+S saves to {target}")
        if self.note:
            lines = (*lines, self.note)
        if self.underlay_shown and self.underlay_path() is None:
            lines = (*lines, 'no underlay: set underlay = "photo.jpg" in [billboard.projection]')
        underlay = self.underlay_path() if self.underlay_shown else None
        return CalibrationOverlay(state, lines, underlay)


def _refused(quad: Quad) -> bool:
    problem = quad_problem(quad)
    return problem is not None and problem != "is not convex"
