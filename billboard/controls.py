"""The billboard's keys: `read_controls` is the only function that reads pygame's
event queue, and it returns the billboard's own values, never pygame events.

Two kinds come out:

- `Command` — the engine's own value, the same the operator console sends on
  ``CHANNEL:control`` (``tempo{bpm}``, ``key{key}``, ``panic{}``, ``pause{on}``,
  ``midi_sync{}``), so the main loop hands it to the engine exactly as it would a
  console command;
- `Ui` and `Resized` — what only the billboard itself acts on (full screen, HUD, test
  pattern, help, sound on/off, quitting, a resized window, the calibration mode on and
  off, its underlay, saving the mapping);
- while calibrating, the calibration mode's own actions (billboard/projection/
  calibration.py): the mouse's press, move and release in output pixels, arrow-key
  nudges (Shift: ten pixels), Tab, snap, undo and redo.

Keys that set a value relative to the current one (tempo ±, next key, pause on/off)
are given that value as an argument, so what comes out is an absolute command, and
the same press means the same thing whether it came from the keyboard or the console.
Time comes in as an argument too (the double-Esc window), so tests need no sleep.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

import pygame

from billboard.engine.clock import MAX_BPM, MIN_BPM
from billboard.engine.events import Command
from billboard.engine.harmony import parse_key
from billboard.projection.calibration import (
    CalibrationAction,
    Move,
    Nudge,
    Press,
    Redo,
    Release,
    Select,
    ToggleSnap,
    Undo,
)

UiAction = Literal[
    "fullscreen",
    "hud",
    "test_pattern",
    "help",
    "mute_sound",
    "quit",
    "quit_armed",
    "calibrate",
    "underlay",
    "save_mapping",
]


@dataclass(frozen=True, slots=True)
class Ui:
    """Something only the billboard acts on. ``quit_armed``: the first Esc, which asks
    for a second one (show `QUIT_PROMPT`); ``quit``: the second, or the window closed."""

    action: UiAction


@dataclass(frozen=True, slots=True)
class Resized:
    """The window was resized to `size` (the display lays itself out again)."""

    size: tuple[int, int]


Control = Ui | Resized | Command | CalibrationAction

TEMPO_STEP: Final = 4.0  # BPM per + or − press: audible, yet no jolt on the dance floor
QUIT_WINDOW_S: Final = 2.0  # the second Esc must come this soon after the first
QUIT_PROMPT: Final = "press Esc again to quit"
# Round the circle of fifths: each press moves to the nearest key (one sharp or flat
# more), so the change sounds like a lift, not a jump. Spelled as musicians read them.
KEY_CYCLE: Final = ("C", "G", "D", "A", "E", "B", "F#", "Db", "Ab", "Eb", "Bb", "F")

# One line per key: the key, a tab, what it does (the display lines up the columns).
HELP_LINES: Final[tuple[str, ...]] = (
    "F\tfull screen on / off",
    "H\tHUD: fps, relay, latency, MIDI",
    "T\ttest pattern (line up the projector)",
    "C\tcalibrate the projection on the building",
    "P\tpanic: clear every loop",
    "M\tall sound off / on",
    "R\tresend MIDI: the synth's sounds and song position",
    "+  −\ttempo up / down 4 BPM",
    "K\tnext key (circle of fifths)",
    "Space\tpause / resume new callers",
    "?  /\tthis help",
    "Esc Esc\tquit",
)

# The calibration mode's keys, for the card it shows.
CALIBRATION_LINES: Final[tuple[str, ...]] = (
    "drag a corner or a window's corner · drag inside a window or the facade to move it",
    "arrows nudge 1 px (Shift 10) · Tab / Shift+Tab next / previous · S snap",
    "U photo underlay · Ctrl+Z undo · Ctrl+Y redo · Ctrl+S save · C done",
)
NUDGE_PX: Final = 1.0
NUDGE_SHIFT_PX: Final = 10.0
_ARROWS: Final[dict[int, tuple[float, float]]] = {
    pygame.K_LEFT: (-1.0, 0.0),
    pygame.K_RIGHT: (1.0, 0.0),
    pygame.K_UP: (0.0, -1.0),
    pygame.K_DOWN: (0.0, 1.0),
}

# A key pressed with one of these is meant for the window manager or the terminal, not
# for us (Alt+F4, Ctrl+C …); Shift is fine, it is how "+" and "?" are typed.
_IGNORED_MODS: Final = pygame.KMOD_CTRL | pygame.KMOD_ALT | pygame.KMOD_META | pygame.KMOD_GUI
_UI_KEYS: Final[dict[int, UiAction]] = {
    pygame.K_f: "fullscreen",
    pygame.K_h: "hud",
    pygame.K_t: "test_pattern",
    pygame.K_m: "mute_sound",
    pygame.K_c: "calibrate",
}
_TEMPO_UP_KEYS: Final = frozenset({pygame.K_PLUS, pygame.K_EQUALS, pygame.K_KP_PLUS})
_TEMPO_DOWN_KEYS: Final = frozenset({pygame.K_MINUS, pygame.K_KP_MINUS})
_HELP_KEYS: Final = frozenset({pygame.K_SLASH, pygame.K_QUESTION, pygame.K_KP_DIVIDE})


@dataclass(slots=True)
class Keyboard:
    """What the keys remember from one read to the next: when Esc was first pressed."""

    quit_armed_at: float | None = None

    def quit_prompt(self, now: float) -> str | None:
        """`QUIT_PROMPT` while a second Esc would quit, else None (for the display)."""
        armed = self.quit_armed_at
        if armed is not None and 0.0 <= now - armed <= QUIT_WINDOW_S:
            return QUIT_PROMPT
        return None


def next_key(key: str) -> str:
    """The key after `key` round the circle of fifths ("C" → "G", "F" → "C"); an
    unreadable key starts the circle again at C."""
    try:
        pitch = parse_key(key)
    except ValueError:
        return KEY_CYCLE[0]
    fifth_up = (pitch + 7) % 12
    return next(name for name in KEY_CYCLE if parse_key(name) == fifth_up)


def read_controls(
    keyboard: Keyboard,
    *,
    now: float,
    bpm: float,
    key: str,
    paused: bool,
    calibrating: bool = False,
) -> list[Control]:
    """Drain pygame's event queue into the billboard's controls, in order.

    `now` is the time on the caller's clock (seconds); `bpm`, `key` and `paused` are
    the engine's current values, so relative keys give absolute commands. Several
    presses read at once build on each other (two "+" give +8 BPM). With
    `calibrating` the mouse and the calibration keys give calibration actions (the
    mouse's moves within one read come out as the last one). Events that are not ours
    (the mouse when not calibrating, focus …) are dropped here, which also keeps the
    window alive."""
    controls: list[Control] = []
    for event in pygame.event.get():
        if event.type == pygame.QUIT:
            controls.append(Ui("quit"))
        elif event.type == pygame.VIDEORESIZE:
            controls.append(Resized((int(event.w), int(event.h))))
        elif calibrating and event.type in _MOUSE_EVENTS:
            action = _mouse_action(event)
            if action is None:
                continue
            if isinstance(action, Move) and controls and isinstance(controls[-1], Move):
                controls[-1] = action  # only where the pointer is now matters
            else:
                controls.append(action)
        elif event.type == pygame.KEYDOWN:
            calibration = _calibration_key(event) if calibrating else None
            if calibration is not None:
                controls.append(calibration)
                continue
            control = _key_control(keyboard, event, now, bpm, key, paused)
            if control is None:
                continue
            controls.append(control)
            # Later presses in this batch start from the value just commanded.
            if isinstance(control, Command):
                if control.name == "tempo":
                    bpm = float(control.args["bpm"])
                elif control.name == "key":
                    key = str(control.args["key"])
                elif control.name == "pause":
                    paused = bool(control.args["on"])
    return controls


_MOUSE_EVENTS: Final = frozenset({pygame.MOUSEBUTTONDOWN, pygame.MOUSEBUTTONUP, pygame.MOUSEMOTION})


def _mouse_action(event: pygame.event.Event) -> CalibrationAction | None:
    window = getattr(event, "window", None)
    if window is not None and window != _main_window():
        return None  # the street-level screen's window (info = "window"): not the facade
    x, y = getattr(event, "pos", (0, 0))
    pos = (float(x), float(y))
    if event.type == pygame.MOUSEMOTION:
        return Move(pos)
    if int(getattr(event, "button", 0)) != pygame.BUTTON_LEFT:
        return None  # the wheel and the other buttons do nothing here
    return Press(pos) if event.type == pygame.MOUSEBUTTONDOWN else Release(pos)


def _main_window() -> object:
    try:
        return pygame.Window.from_display_module()
    except pygame.error:
        return None


def _calibration_key(event: pygame.event.Event) -> CalibrationAction | Ui | None:
    """A key of the calibration mode, or None (then the usual keys apply)."""
    code = int(getattr(event, "key", 0))
    mod = int(getattr(event, "mod", 0))
    shift = bool(mod & pygame.KMOD_SHIFT)
    if mod & pygame.KMOD_CTRL:
        if code == pygame.K_z:
            return Redo() if shift else Undo()
        if code == pygame.K_y:
            return Redo()
        if code == pygame.K_s:
            return Ui("save_mapping")
        return None
    if mod & (pygame.KMOD_ALT | pygame.KMOD_META | pygame.KMOD_GUI):
        return None
    if code in _ARROWS:
        step = NUDGE_SHIFT_PX if shift else NUDGE_PX
        dx, dy = _ARROWS[code]
        return Nudge(dx * step, dy * step)
    if code == pygame.K_TAB:
        return Select(-1 if shift else 1)
    if code == pygame.K_s:
        return ToggleSnap()
    if code == pygame.K_u:
        return Ui("underlay")
    return None


def _key_control(
    keyboard: Keyboard, event: pygame.event.Event, now: float, bpm: float, key: str, paused: bool
) -> Control | None:
    code = int(getattr(event, "key", 0))
    text = str(getattr(event, "unicode", "") or "")
    if int(getattr(event, "mod", 0)) & _IGNORED_MODS:
        return None
    if code == pygame.K_ESCAPE:
        return _escape(keyboard, now)
    # Symbols by the character typed first: "+" and "?" sit on different keys on
    # different layouts, and the character is what the help promises.
    if text in ("+", "=") or code in _TEMPO_UP_KEYS:
        return _tempo(bpm + TEMPO_STEP)
    if text in ("-", "_", "−") or code in _TEMPO_DOWN_KEYS:
        return _tempo(bpm - TEMPO_STEP)
    if text in ("?", "/") or code in _HELP_KEYS:
        return Ui("help")
    if code in _UI_KEYS:
        return Ui(_UI_KEYS[code])
    if code == pygame.K_p:
        return Command("panic", {})
    if code == pygame.K_k:
        return Command("key", {"key": next_key(key)})
    if code == pygame.K_r:
        return Command("midi_sync", {})
    if code == pygame.K_SPACE:
        return Command("pause", {"on": not paused})
    return None


def _tempo(bpm: float) -> Command:
    # Whole BPM within the grid's range, as the console's tempo field sends it.
    return Command("tempo", {"bpm": float(round(min(MAX_BPM, max(MIN_BPM, bpm))))})


def _escape(keyboard: Keyboard, now: float) -> Ui:
    """Esc twice within `QUIT_WINDOW_S` quits: one stray press never ends the show."""
    if keyboard.quit_prompt(now) is not None:
        keyboard.quit_armed_at = None
        return Ui("quit")
    keyboard.quit_armed_at = now
    return Ui("quit_armed")
